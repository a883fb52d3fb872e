"""The embedded server in its own process, side by side with the server in the kernel, in one run.

"child": what the magic does (no key, no GEMINI_BASE_URL: the embedded server as a child process).
"in-kernel": the alternative, the same server started in the kernel's process (``start_server``, a thread
sharing the kernel's GIL and memory), reached through GEMINI_BASE_URL.

1. ``%load_ext`` and the first ``%%interact`` cell in a fresh process, scripted engine; medians of
   ``--repeats`` runs each (each sample a new interpreter).
2. The same on SmolLM2, its model file in the page cache (the model loads in the server, lazily).
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
    import json, os, sys, time
    mode = sys.argv[1]
    if mode == "in-kernel":
        from gemini_magics.local import start_server
        os.environ["GEMINI_BASE_URL"] = start_server().base_url
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    import contextlib, io
    t0 = time.perf_counter()
    ip.run_line_magic("load_ext", "gemini_magics")
    t1 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        ok = ip.run_cell("%%interact\\nHi, my name is Lou.").success
    t2 = time.perf_counter()
    print(json.dumps({"load_ext": t1 - t0, "first_cell": t2 - t1, "ok": ok}))
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
    print(json.dumps({"wall": wall, "rss_base": base, "peak_growth": max(0.0, peak - max(base, peak_before)),
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


def first_cells(engine: str, repeats: int) -> None:
    print(f"\n{engine}: %load_ext and the first cell in a fresh process (median of {repeats})")
    for mode in ("child", "in-kernel"):
        samples = [run(FIRST_CELL, mode, engine=engine) for _ in range(repeats)]
        assert all(s["ok"] for s in samples)
        load = statistics.median(s["load_ext"] for s in samples) * 1000
        first = statistics.median(s["first_cell"] for s in samples)
        each = ", ".join(f"{s['first_cell']:.2f}" for s in samples)
        print(f"  {mode:10} load_ext {load:6.1f} ms   first cell {first:5.2f} s   (first cells: {each})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--big-rows", type=int, default=100)
    parser.add_argument("--skip-smollm2", action="store_true")
    args = parser.parse_args()
    first_cells("scripted", args.repeats)
    if not args.skip_smollm2:
        run(FIRST_CELL, "child", engine="smollm2")  # the model file into the page cache, the probe remembered
        first_cells("smollm2", args.repeats)
    latency = 0.2
    ideal = args.rows * latency / 16
    print(f"\n--over {args.rows} rows x ~200 ms at concurrency 16 (ideal N*L/C = {ideal:.1f} s); "
          f"kernel memory with {args.big_rows} rows of a 7 MB file each")
    for mode in ("child", "in-kernel"):
        result = run(ROWS, mode, str(args.rows), str(args.big_rows))
        print(f"  {mode:10} --over wall {result['wall']:6.1f} s = {result['wall'] / max(ideal, 1e-9):4.2f}x ideal   "
              f"kernel RSS {result['rss_base']:6.0f} MB, peak growth with the 7 MB files +{result['peak_growth']:5.0f} MB")


if __name__ == "__main__":
    main()
