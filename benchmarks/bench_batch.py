"""``%%interact --over FILE.parquet --batch --out …`` at a million rows, against the local server in a process
of its own, with a kernel (IPython, the extension) in a process of its own so its peak memory is its own.

1. The whole run: the cell's return (every request written, uploaded and sent as jobs), the whole job (the
   last row in ``--out``), and the kernel's peak RSS (VmHWM), against what the same rows weigh as a pandas
   DataFrame of the requests' JSON bodies built in memory (the alternative: one in-memory payload).
2. Kill and re-run: a kernel is killed (SIGKILL) once two of the jobs are read; a new kernel re-runs the cell:
   no job is sent again (the server's job count), and no row is answered twice (the sum of the jobs'
   request counts is the row count).

    .venv/bin/python benchmarks/bench_batch.py [--rows 1000000] [--job-rows 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_tools import start_server

KERNEL = r'''
import json, os, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "gemini_magics")
shell.run_line_magic("config", "InteractMagics.live = False")
shell.run_line_magic("config", f"InteractMagics.batch_job_rows = {int(os.environ['JOB_ROWS'])}")
shell.run_cell("""
from pydantic import BaseModel
class Review(BaseModel):
    product: str
    rating: int
""")
cell = f"%%interact --over {os.environ['SOURCE']} --batch --schema Review --out {os.environ['OUT']} -o res\nExtract the product and rating: {{{{row.text}}}}"
started = time.perf_counter()
outcome = shell.run_cell(cell)
assert outcome.success, outcome.error_in_exec
run = outcome.result  # the run's handle (live views are off, so the cell returns it)
submitted = time.perf_counter() - started
kill_after = int(os.environ.get("KILL_AFTER", "0"))
if kill_after:
    while sum(1 for b in run.jobs.values() if b is not None and b.done) < kill_after:
        time.sleep(0.2)
    time.sleep(1.0)  # their results read
    print(json.dumps({"killed": True, "jobs": list(run.jobs)}), flush=True)
    os.kill(os.getpid(), 9)
run.done.wait()
assert run.error is None, run.error
whole = time.perf_counter() - started
peak = int([l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]) // 1024
res = shell.user_ns["res"]
print(json.dumps({"submitted": submitted, "whole": whole, "peak_mb": peak, "rows": len(res),
                  "jobs": list(run.jobs), "summary": run.result.summary}), flush=True)
'''


def make_parquet(path: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    products = ["kettle", "toaster", "lamp", "chair", "mug"]
    writer = None
    for start in range(0, rows, 100_000):
        n = min(100_000, rows - start)
        text = [f"Review {i}: the {products[i % 5]} works, {i % 5 + 1} stars, order {i}." for i in range(start, start + n)]
        table = pa.table({"text": text, "id": list(range(start, start + n))})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def kernel(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", KERNEL], env={**os.environ, **env}, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"the kernel failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    figures: dict[str, object] = json.loads(lines[-1])
    return figures


def jobs_on_server(url: str) -> list[dict[str, object]]:
    from gemini_magics import Client

    with Client(base_url=url) as client:
        return [{"name": b.name, "requests": b.batch_stats.request_count} for b in client.batches.list()]


def in_memory_payload_mb(source: Path, rows: int) -> float:
    """The alternative's memory: every request body of the run built in memory at once, as one payload."""
    import pyarrow.parquet as pq

    before = _rss_mb()
    texts = pq.read_table(source, columns=["text"]).column("text").to_pylist()[:rows]
    schema = {"type": "object", "properties": {"product": {"type": "string"}, "rating": {"type": "integer"}},
              "required": ["product", "rating"]}  # fmt: skip
    payload = [{"key": str(i), "request": {"contents": [{"role": "user", "parts": [{"text": f"Extract the product and rating: {t}"}]}],
                "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": schema}}}
               for i, t in enumerate(texts)]  # fmt: skip
    body = json.dumps(payload)
    grown = _rss_mb() - before
    del payload, body, texts
    return grown


def _rss_mb() -> float:
    return int([line for line in open("/proc/self/status") if line.startswith("VmRSS")][0].split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--job-rows", type=int, default=200_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    source = folder / "reviews.parquet"
    make_parquet(source, args.rows)
    process, url = start_server()
    env = {"GEMINI_BASE_URL": url, "GEMINI_MAGICS_CACHE_DIR": str(folder / "cache"), "SOURCE": str(source),
           "JOB_ROWS": str(args.job_rows)}  # fmt: skip
    try:
        whole = kernel({**env, "OUT": str(folder / "whole.parquet")})
        jobs_before = len(jobs_on_server(url))
        env["GEMINI_MAGICS_CACHE_DIR"] = str(folder / "cache-2")  # a fresh cache: every row sent again
        killed = kernel({**env, "OUT": str(folder / "resumed.parquet"), "KILL_AFTER": "2"})
        resumed = kernel({**env, "OUT": str(folder / "resumed.parquet")})
        jobs = jobs_on_server(url)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    second = jobs[: len(jobs) - jobs_before]  # newest first: the killed kernel's jobs
    sent = sum(int(j["requests"]) for j in second)  # type: ignore[call-overload]
    memory = in_memory_payload_mb(source, args.rows)
    print(f"{args.rows:,} rows from Parquet, --batch --out, jobs of {args.job_rows:,} rows (server in its own process)")
    print(f"  cell returned (written, uploaded, sent)  {whole['submitted']:7.1f} s   (target ≤ 180 s)")
    print(f"  whole run (last row in --out)            {whole['whole']:7.1f} s   (target ≤ 600 s)")
    print(f"  kernel peak RSS                          {whole['peak_mb']:7,} MB  (target ≤ 1,024 MB; the requests "
          f"built in memory as one payload grow a process by {memory:,.0f} MB on their own)")  # fmt: skip
    print(f"  killed after 2 of {len(killed['jobs'])} jobs (SIGKILL), re-run in a new kernel: "  # type: ignore[arg-type]
          f"{len(second)} jobs on the server for both kernels (the re-run sent {len(second) - len(killed['jobs'])} more); "  # type: ignore[arg-type]
          f"{sent:,} requests in them for {args.rows:,} rows (no row answered twice: {sent == args.rows}); "
          f"the re-run took {resumed['whole']:.1f} s and wrote {resumed['rows']:,} rows")
    print(f"  {whole['summary']}")


if __name__ == "__main__":
    sys.exit(main())
