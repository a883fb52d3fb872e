"""Kernel-side cost of one tool round trip through ``%%interact --tools``, against the same round trip
hand-written with the client, in the same run.

One round trip: the model asks for ``get_weather`` (scripted engine), the call is parsed, validated and
run, its result sent back, and the final answer read. Both contenders talk to the same scripted server,
running in its own process (``gemini-magics serve``) so it does not share the benchmark's GIL; medians
of interleaved runs.

    .venv/bin/python benchmarks/bench_tools.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys

from _util import interleaved_medians

from gemini_magics import Client

DECLARATION = {
    "type": "function", "name": "get_weather", "description": "The weather now.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}  # fmt: skip


def get_weather(city: str) -> dict[str, object]:
    """The weather now."""
    return {"city": city, "temp": 21}


def start_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "gemini_magics.cli", "serve", "--engine", "scripted", "--port", "0", "--no-auth"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if "http://127.0.0.1:" in line:
            return process, line[line.index("http://") :].split()[0].rstrip(")")
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    process, url = start_server()
    os.environ["GEMINI_BASE_URL"] = url
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "gemini_magics")
    shell.run_line_magic("config", "InteractMagics.live = False")
    shell.user_ns["get_weather"] = get_weather
    client = Client(base_url=url)

    def create(stream: bool, **body: object) -> object:
        if not stream:
            return client.interactions.create(model="m", tools=[DECLARATION], store=False, **body)
        with client.interactions.create(model="m", tools=[DECLARATION], store=False, stream=True, **body) as events:
            return events.until_done()

    def by_hand(stream: bool = False) -> None:
        asked = create(stream, input="Use get_weather.")
        call = asked.function_calls[0]  # type: ignore[attr-defined]
        result = get_weather(**call.arguments)
        history = [{"type": "user_input", "content": [{"type": "text", "text": "Use get_weather."}]}]
        history += [s.to_dict() for s in asked.steps] + [  # type: ignore[attr-defined]
            {"type": "function_result", "call_id": call.id, "name": call.name, "result": result}
        ]
        assert create(stream, input=history).text  # type: ignore[attr-defined]

    def cell(flags: str) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            outcome = shell.run_cell(f"%%interact --tools get_weather --no-store --new {flags}\nUse get_weather.;")
        assert outcome.success, outcome.error_in_exec

    try:
        contenders = {
            "hand-written with the client": by_hand, "%%interact --tools --no-stream": lambda: cell("--no-stream"),
            "hand-written, streamed": lambda: by_hand(stream=True), "%%interact --tools (streamed)": lambda: cell(""),
        }  # fmt: skip
        for warm in contenders.values():
            warm()
        results = interleaved_medians(contenders, args.repeats)
    finally:
        client.close()
        shell.run_line_magic("unload_ext", "gemini_magics")
        process.terminate()
        process.wait(10)
    print(f"one tool round trip (2 interactions, one function call), medians of {args.repeats} interleaved runs")
    for name, seconds in results.items():
        base = results["hand-written, streamed" if "stream" in name and "no-stream" not in name else "hand-written with the client"]
        print(f"  {name:34s} {seconds * 1000:7.1f} ms  ({seconds / base:.2f}x the hand-written loop)")


if __name__ == "__main__":
    main()
