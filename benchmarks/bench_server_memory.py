"""The embedded server's memory and load: RSS with many stored interactions, after expiry, and many
concurrent streams.

The scripted server runs in its own process (``gemini-magics serve``), so its RSS is its own. Three
phases in one run:

1. ``--count`` stored interactions of ``--deltas`` text deltas each (unary creates, 8 at a time): the
   server's RSS before and after, and per stored interaction.
2. after the retention TTL (``--keep-seconds``) passes: RSS again, against the baseline.
3. ``--streams`` concurrent streams of ``--deltas`` deltas: every text exact, p50/p99 latency.

    .venv/bin/python benchmarks/bench_server_memory.py [--count 10000] [--deltas 2000] [--streams 200]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import subprocess
import sys
import time
from pathlib import Path

from gemini_magics import Client


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start(keep_seconds: float, count: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "gemini_magics.cli", "serve", "--engine", "scripted", "--port", "0", "--no-auth",
         "--keep-hours", str(keep_seconds / 3600), "--keep-max", str(count * 2), "--keep-mb", "4096"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, line.split(" on ", 1)[1].split()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--deltas", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--keep-seconds", type=float, default=480.0, help="retention TTL: longer than making them takes")
    args = parser.parse_args()
    process, url = start(args.keep_seconds, args.count)
    headers = {"X-Scripted-Deltas": str(args.deltas)}
    try:
        with Client(base_url=url, timeout=300) as client:
            reference = client.interactions.create(model="m", input="same prompt", extra_headers=headers)
            time.sleep(1)
            baseline = rss_mb(process.pid)
            started = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                stored = list(pool.map(lambda i: client.interactions.create(model="m", input=f"interaction {i}",
                                                                            extra_headers=headers).id, range(args.count)))  # fmt: skip
            filled = rss_mb(process.pid)
            took = time.monotonic() - started
            assert client.interactions.get(stored[-1]).text  # still served, from the compacted log
            print(f"{args.count} stored interactions of {args.deltas} deltas each ({took:.0f} s to make)")
            print(f"  server RSS: baseline {baseline:.0f} MB, with them {filled:.0f} MB "
                  f"({(filled - baseline) * 1024 / args.count:.1f} KB per interaction; "
                  f"final resource {len(reference.to_json()) / 1024:.1f} KB)")  # fmt: skip
            time.sleep(args.keep_seconds + 2)
            try:  # any request sweeps: the expired go
                client.interactions.get(stored[-1])
            except Exception as exc:  # noqa: BLE001 - expected: 404 after expiry
                gone = type(exc).__name__
            else:
                gone = "still there"
            time.sleep(1.5)
            after = rss_mb(process.pid)
            print(f"  after expiry ({args.keep_seconds:.0f} s): {after:.0f} MB (baseline {baseline:.0f} MB); "
                  f"an expired id answers {gone}")

            def stream(i: int) -> tuple[float, bool]:
                begun = time.perf_counter()
                with client.interactions.create(model="m", input="same prompt", stream=True, store=False,
                                                extra_headers=headers) as events:  # fmt: skip
                    text = events.until_done().text
                return time.perf_counter() - begun, text == reference.text

            begun = time.monotonic()
            with concurrent.futures.ThreadPoolExecutor(args.streams) as pool:
                results = list(pool.map(stream, range(args.streams)))
            latencies = sorted(seconds for seconds, _ in results)
            exact = sum(ok for _, ok in results)
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            print(f"{args.streams} concurrent streams of {args.deltas} deltas: {exact}/{args.streams} exact texts, "
                  f"p50 {statistics.median(latencies):.2f} s, p99 {p99:.2f} s, all done in {time.monotonic() - begun:.1f} s")  # fmt: skip
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
