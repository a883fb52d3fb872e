"""``%%interact --over`` at scale, side by side with a plain serial loop over the client, in one run.

1. 10,000 rows on the scripted engine at ~50 ms a request (``X-Scripted-Delay-Ms``) with
   ``--concurrency 64``, three times (new rows each time, so every row is sent and cached): the median wall
   time against the ideal N·L/C and the 1.2 × N·L/C target (the first run also pays the kernel's first-use
   imports, ~0.4 s; it is shown on its own); the serial loop over the client on the same rows (a sample of
   them: a full serial pass would take minutes, and its per-row time is flat) gives the alternative's wall time.
2. The last run's rows again, all from the row cache.
3. Kernel CPU per row at zero latency (the server in its own process, so its CPU is not counted), and
   how many rows a second the local server itself then answers.

    .venv/bin/python benchmarks/bench_extract.py [--rows 10000] [--concurrency 64] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time

from bench_tools import start_server

from gemini_magics import Client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--serial-sample", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3, help="live runs (the median is the figure)")
    parser.add_argument("--latency-ms", type=int, default=50, help="each request's latency on the scripted engine")
    args = parser.parse_args()
    deltas = max(1, args.latency_ms // 50)
    slow = {"X-Scripted-Deltas": str(deltas), "X-Scripted-Delay-Ms": str(args.latency_ms // deltas)}
    process, url = start_server()
    os.environ["GEMINI_BASE_URL"] = url
    os.environ["GEMINI_MAGICS_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-extract-")
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "gemini_magics")
    shell.run_line_magic("config", "InteractMagics.live = False")
    n, c = args.rows, args.concurrency

    def rows(run: int) -> None:  # new rows for each live run: every row is sent, none comes from the cache
        shell.user_ns["df"] = pd.DataFrame({"text": [f"Review {run}-{i}: the kettle works, {i % 5 + 1} stars." for i in range(n)]})
    cell = f"%%interact --over df -o out --concurrency {c}FLAGS\nExtract the rating from: {{{{row.text}}}};"

    def run(flags: str = "", headers: dict[str, str] | None = None) -> float:
        shell.run_line_magic("config", f"InteractMagics.headers = {headers or {}!r}")
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            outcome = shell.run_cell(cell.replace("FLAGS", flags))
        assert outcome.success, outcome.error_in_exec
        frame = shell.user_ns["out"]
        assert (frame["_status"] == "ok").all() and frame["_id"].nunique() == n  # every row its own request
        return time.perf_counter() - started

    try:
        client = Client(base_url=url)
        latencies = []
        for i in range(args.serial_sample):  # the alternative: a serial loop over the client
            started = time.perf_counter()
            client.interactions.create(model="gemini-3-flash-preview", store=False, extra_headers=slow,
                                       input=f"Extract the rating from: Review {i}: the kettle works.")  # fmt: skip
            latencies.append(time.perf_counter() - started)
        latency = statistics.median(latencies)
        live = []
        for k in range(args.runs):
            rows(k)
            live.append(run(headers=slow))
        cached = run()
        cold_cpu, cold_wall = [], []
        for _ in range(3):  # kernel CPU per row at zero latency: fresh rows, every request sent
            cpu = time.process_time()
            cold_wall.append(run(" --no-cache"))
            cold_cpu.append((time.process_time() - cpu) / n)
    finally:
        shell.run_line_magic("unload_ext", "gemini_magics")
        process.terminate()
        process.wait(10)
    ideal = n * latency / c
    concurrent = statistics.median(live)
    print(f"{n} rows, one request each, ~{latency * 1000:.0f} ms a request (median of {len(latencies)} serial ones)")
    print(f"  serial loop over the client      {n * latency:7.1f} s  (measured on {len(latencies)} rows, x{n // len(latencies)})")
    print(f"  %%interact --over, concurrency {c} {concurrent:7.1f} s  ({concurrent / ideal:.2f}x the ideal N·L/C = {ideal:.1f} s; "
          f"target 1.2x = {1.2 * ideal:.1f} s; {n * latency / concurrent:.1f}x faster than serial)")  # fmt: skip
    print(f"    median of {len(live)} runs: " + ", ".join(f"{t:.1f} s ({t / ideal:.2f}x)" for t in live)
          + " (the first also pays the kernel's first-use imports)")  # fmt: skip
    print(f"  the same rows from the cache     {cached:7.2f} s")
    print(f"  kernel CPU per row, zero latency {statistics.median(cold_cpu) * 1000:7.2f} ms  (median of 3 runs, server in its own process; "
          f"{n / statistics.median(cold_wall):,.0f} rows/s end to end)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
