"""Kernel-side cost of the live widget view: a 10,000-delta stream rendered vs consumed without rendering.

The same bytes come from a loopback server in another process; medians of interleaved runs. Outside a
kernel the widgets have no frontend, so this measures exactly the kernel's share: folding, diffing and
trait updates, throttled to 20 renders per second.

    .venv/bin/python benchmarks/bench_render.py [--deltas 10000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import contextlib
import io

from _util import StaticSSEProcess, interleaved_medians, sse_body

from gemini_magics import Client
from gemini_magics.render.widgets import WidgetView


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deltas", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    server = StaticSSEProcess(sse_body(args.deltas))
    client = Client(base_url=server.url)
    renders: list[int] = []

    def plain() -> None:
        with client.interactions.create(model="m", input="x", stream=True) as stream:
            for _ in stream:
                pass
            stream.interaction  # noqa: B018 - the final snapshot is part of the work

    def rendered() -> None:
        view = WidgetView(model="m")
        with contextlib.redirect_stdout(io.StringIO()):  # no frontend: display() would print the bundle
            view.__enter__()
        try:
            with client.interactions.create(model="m", input="x", stream=True) as stream:
                for event in stream:
                    view.event(event)
                view.finish(stream.interaction)
        finally:
            view.__exit__(None, None, None)
        renders.append(view.render_count)

    try:
        results = interleaved_medians(
            {"consumed without rendering": plain, "with the live widget view": rendered}, args.repeats
        )
    finally:
        server.stop()
    base = results["consumed without rendering"]
    print(f"{args.deltas} deltas, medians of {args.repeats} interleaved runs")
    for name, seconds in results.items():
        print(f"  {name:28s} {seconds * 1000:8.1f} ms")
    extra = results["with the live widget view"] - base
    print(f"  rendering adds {extra * 1000:.1f} ms ({results['with the live widget view'] / base:.2f}x); "
          f"widget renders per stream: {min(renders)}-{max(renders)}")  # fmt: skip


if __name__ == "__main__":
    main()
