"""The embedded server in its own process, side by side with the server in the kernel, in one run.

"child": what the magic does (no key, no GEMINI_BASE_URL: the embedded server as a child process,
started at ``%load_ext``).
"in-kernel": the alternative, the previous release's way: the same server started in the kernel's process
at the first cell (``start_server``, a thread sharing the kernel's GIL and memory).

1. ``%load_ext`` and the first ``%%interact`` cell in a fresh process, scripted engine, right after
   ``%load_ext`` and 3 s after it (a person writing the cell; the child server starts meanwhile);
   medians of ``--repeats`` runs each (each sample a new interpreter).
2. The same on SmolLM2, its model file in the page cache (the child loads the model as it starts; the
   in-kernel server at its first request).
3. ``--over``: ``--rows`` rows at ~200 ms a request (``X-Scripted-Deltas: 4``, ``X-Scripted-Delay-Ms: 50``),
   concurrency 16, against the ideal N·L/C.
4. Kernel memory: ``--big-rows`` rows each referencing a 7 MB file; the kernel's peak RSS growth.

    .venv/bin/python benchmarks/bench_engine_process.py [--repeats 5] [--rows 1000] [--big-rows 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

CACHE_DIR = tempfile.mkdtemp(prefix="bench-engine-cache-")

FIRST_CELL = textwrap.dedent("""
    import contextlib, io, json, os, sys, time
    mode, pause = sys.argv[1], float(sys.argv[2])
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    if mode == "in-kernel":  # as the previous release did: nothing at %load_ext, the server at the first cell
        os.environ["GEMINI_BASE_URL"] = "http://127.0.0.1:9"  # (no prestart for it)
    t0 = time.perf_counter()
    ip.run_line_magic("load_ext", "gemini_magics")
    load_ext = time.perf_counter() - t0
    time.sleep(pause)  # the time a person takes to write the first cell
    t1 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        if mode == "in-kernel":
            from gemini_magics.local import start_server
            os.environ["GEMINI_BASE_URL"] = start_server().base_url
        outcome = ip.run_cell("%%interact\\nHi, my name is Lou.")
    first = time.perf_counter() - t1
    usage = outcome.result.usage if outcome.success else None
    print(json.dumps({"load_ext": load_ext, "first_cell": first, "ok": outcome.success,
                      "tokens": usage.total_output_tokens if usage else 0}))
""")

ROWS = textwrap.dedent("""
    import contextlib, io, json, os, resource, sys, tempfile, time
    mode, rows, big_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.environ["GEMINI_MAGICS_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-engine-")
    if mode == "in-kernel":
        from gemini_magics.local import start_server
        os.environ["GEMINI_BASE_URL"] = start_server().base_url
    import pandas as pd
    from pathlib import Path
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "gemini_magics")
    ip.run_line_magic("config", "InteractMagics.live = False")
    def rss():
        return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024
    def cell(text):
        with contextlib.redirect_stdout(io.StringIO()):
            outcome = ip.run_cell(text)
        assert outcome.success, outcome.error_in_exec
        assert (ip.user_ns["out"]["_status"] == "ok").all()
    with contextlib.redirect_stdout(io.StringIO()):  # the server is up and the client imported before timing
        assert ip.run_cell("%%interact --no-stream\\nwarm up").success
    ip.user_ns["df"] = pd.DataFrame({"text": [f"Review {i}: the kettle works." for i in range(rows)]}) if rows else None
    ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Deltas": "4", "X-Scripted-Delay-Ms": "50"}')
    client = ip._gemini_magics.session.backend().client
    latencies = []
    for i in range(20 if rows else 0):  # L, measured: one request at a time, as the rows send them
        started = time.perf_counter()
        client.interactions.create(model="gemini-3-flash-preview", store=False, input=f"Extract the rating from: Review {i}",
                                   extra_headers={"X-Scripted-Deltas": "4", "X-Scripted-Delay-Ms": "50"})
        latencies.append(time.perf_counter() - started)
    latency = sorted(latencies)[len(latencies) // 2] if latencies else 0.0
    wall = 0.0
    if rows:
        started = time.perf_counter()
        cell("%%interact --over df -o out --concurrency 16 --no-cache\\nExtract the rating from: {{row.text}};")
        wall = time.perf_counter() - started
    ip.run_line_magic("config", "InteractMagics.headers = {}")
    base = rss()
    files = []
    for i in range(big_rows):
        path = Path(tempfile.mkdtemp()) / f"scan{i}.txt"
        path.write_bytes(__import__("base64").b64encode(os.urandom(7 * 1024 * 1024 * 3 // 4)))
        files.append(path)
    ip.user_ns["scans"] = [{"name": f"scan {i}", "file": p} for i, p in enumerate(files)]
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if big_rows:
        cell("%%interact --over scans -o out --no-cache\\nDescribe {{row.name}}: {{row.file}};")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "latency": latency, "rss_base": base, "peak_growth": max(0.0, peak - max(base, peak_before)),
                      "rss_after": rss()}))
""")


def run(script: str, *args: str, engine: str = "scripted") -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env["GEMINI_MAGICS_ENGINE"] = engine
    env["GEMINI_MAGICS_CACHE_DIR"] = CACHE_DIR  # one for the run: the engine probe is remembered, as for a user
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def first_cells(engine: str, repeats: int, pause: float) -> None:
    when = f"{pause:g} s after %load_ext" if pause else "right after %load_ext"
    print(f"\n{engine}: %load_ext, and the first cell {when}, in a fresh process (median of {repeats})")
    for mode in ("child", "in-kernel"):
        samples = [run(FIRST_CELL, mode, str(pause), engine=engine) for _ in range(repeats)]
        assert all(s["ok"] for s in samples)
        load = statistics.median(s["load_ext"] for s in samples) * 1000
        first = statistics.median(s["first_cell"] for s in samples)
        each = ", ".join(f"{s['first_cell']:.2f}" for s in samples)
        tokens = statistics.median(s["tokens"] for s in samples)
        print(f"  {mode:10} load_ext {load:6.1f} ms   first cell {first:5.2f} s, {tokens:.0f} tokens answered   "
              f"(first cells: {each})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--big-rows", type=int, default=100)
    parser.add_argument("--skip-smollm2", action="store_true")
    args = parser.parse_args()
    for pause in (0.0, 3.0):
        first_cells("scripted", args.repeats, pause)
    if not args.skip_smollm2:
        run(FIRST_CELL, "child", "0", engine="smollm2")  # the model file into the page cache, the probe remembered
        for pause in (0.0, 3.0):
            first_cells("smollm2", args.repeats, pause)
    print(f"\n--over {args.rows} rows x ~200 ms at concurrency 16, against the ideal N*L/C (L measured, median of 20 "
          f"single requests); kernel memory with {args.big_rows} rows of a 7 MB file each")
    for mode in ("child", "in-kernel"):
        result = run(ROWS, mode, str(args.rows), str(args.big_rows))
        ideal = args.rows * result["latency"] / 16
        ratio = result["wall"] / ideal if ideal else 0.0
        print(f"  {mode:10} --over wall {result['wall']:6.1f} s = {ratio:4.2f}x the ideal {ideal:.1f} s (L = "
              f"{result['latency'] * 1000:.0f} ms)   kernel RSS {result['rss_base']:6.0f} MB, peak growth with the "
              f"7 MB files +{result['peak_growth']:5.0f} MB")


if __name__ == "__main__":
    main()
