"""Streaming throughput: this client vs raw httpx line iteration vs the official google-genai SDK.

All three read the same bytes (a 20,000-delta steps-schema stream) from one loopback server in the
same run; figures are medians of several runs, reported as events/s and as ratios.

    .venv/bin/python benchmarks/bench_stream.py [--deltas 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json

import httpx
from _util import StaticSSEProcess, interleaved_medians, median_seconds, sse_body

from gemini_magics import Client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deltas", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--sdk-repeats", type=int, default=2, help="the SDK takes ~20 s a run")
    args = parser.parse_args()
    body = sse_body(args.deltas)
    events = args.deltas + 5
    server = StaticSSEProcess(body)
    url = f"{server.url}/v1beta/interactions"
    try:
        http = httpx.Client()

        def raw_lines() -> None:
            with http.stream("POST", url, json={}) as response:
                n = sum(1 for line in response.iter_lines() if line.startswith("data:"))
            assert n == events

        def raw_lines_json() -> None:
            with http.stream("POST", url, json={}) as response:
                n = sum(
                    1 for line in response.iter_lines() if line.startswith("data:") and json.loads(line[5:])
                )
            assert n == events

        ours = Client(base_url=server.url)

        def gemini_magics() -> None:
            with ours.interactions.create(model="m", input="x", stream=True) as stream:
                n = sum(1 for _ in stream)
                assert n == events and len(stream.interaction.text) == 4 * args.deltas

        results = interleaved_medians({
            "raw httpx iter_lines (floor)": raw_lines,
            "raw httpx iter_lines + json.loads": raw_lines_json,
            "gemini-magics Client (typed events + accumulated Interaction)": gemini_magics,
        }, args.repeats)  # fmt: skip
        try:
            from google import genai
            from google.genai import types

            sdk = genai.Client(api_key="bench", http_options=types.HttpOptions(
                base_url=server.url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)))  # fmt: skip

            def official_sdk() -> None:
                n = sum(1 for _ in sdk.interactions.create(model="m", input="x", stream=True))
                assert n == events

            results["google-genai SDK (typed events)"] = median_seconds(official_sdk, args.sdk_repeats)
        except ImportError:
            print("google-genai not installed: SDK row skipped")
    finally:
        server.stop()

    print(f"{args.deltas} deltas ({len(body) / 1e6:.1f} MB) from a loopback server in another process; "
          f"medians of {args.repeats} interleaved runs (SDK: {args.sdk_repeats})")  # fmt: skip
    ours_t = results["gemini-magics Client (typed events + accumulated Interaction)"]
    for name, seconds in results.items():
        print(f"  {name:64s} {events / seconds:10,.0f} events/s  ({seconds * 1000:7.1f} ms)")
    floor = results["raw httpx iter_lines (floor)"]
    print(f"  ratio ours / raw httpx floor: {ours_t / floor:.2f}x the time")
    print(
        f"  ratio ours / raw httpx + json.loads: {ours_t / results['raw httpx iter_lines + json.loads']:.2f}x the time"
    )
    if "google-genai SDK (typed events)" in results:
        print(f"  speed-up over the SDK: {results['google-genai SDK (typed events)'] / ours_t:.2f}x")


if __name__ == "__main__":
    main()
