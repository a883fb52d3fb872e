"""Tools from a cell: declarations from Python callables, the call loop, and the built-in tools.

Loop tests run in a real IPython shell against the embedded scripted server over loopback; what was
sent is checked on the requests the server received.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any, Literal, Optional

import pytest
from pydantic import BaseModel

from conftest import Shell, loopback_page, requests_to
from gemini_magics import tool
from gemini_magics.tools import Toolbox, ToolCall, function_tool, parse_docstring


def creates(server: Any) -> list[dict[str, Any]]:
    return [r["json"] for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions") and isinstance(r["json"], dict)]


# -- declarations -------------------------------------------------------------------------------------


class Place(BaseModel):
    city: str
    country: str = "FR"


def forecast(place: Place, unit: Literal["c", "f"] = "c", days: Optional[int] = None, tags: list[str] = [],  # noqa: B006, UP045
             limits: dict[str, float] | None = None) -> dict[str, Any]:  # fmt: skip
    """Get the weather forecast.

    Args:
        place: Where to look.
        unit (str): Temperature unit,
            Celsius or Fahrenheit.
        days: How many days ahead.

    Returns:
        The forecast.
    """
    return {}


def numpy_style(x: int, y: float = 1.0) -> float:
    """Add two numbers.

    Parameters
    ----------
    x : int
        The first number.
    y : float, optional
        The second
        number.
    """
    return x + y


def test_declarations_come_from_signatures_hints_and_docstrings() -> None:
    declared = function_tool(forecast).declaration()
    assert declared["name"] == "forecast" and declared["description"] == "Get the weather forecast."
    properties = declared["parameters"]["properties"]
    assert declared["parameters"]["required"] == ["place"]
    assert properties["place"]["properties"]["city"] == {"type": "string"} and properties["place"]["description"] == "Where to look."
    assert properties["unit"] == {"default": "c", "description": "Temperature unit, Celsius or Fahrenheit.", "enum": ["c", "f"], "type": "string"}
    assert properties["days"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert properties["tags"]["items"] == {"type": "string"}
    assert properties["limits"]["anyOf"][0]["additionalProperties"] == {"type": "number"}
    assert "$ref" not in json.dumps(declared) and "title" not in json.dumps(declared)
    numpy = function_tool(numpy_style).declaration()
    assert numpy["parameters"]["properties"]["y"]["description"] == "The second number."
    assert parse_docstring("Just a summary.") == ("Just a summary.", {})


def test_the_tool_decorator_overrides_and_asks() -> None:
    @tool(confirm=True, description="Delete a file for good.", name="remove")
    def delete_file(path: str) -> str:
        return path

    declared = function_tool(delete_file)
    assert declared.confirm and declared.name == "remove" and declared.description == "Delete a file for good."


def test_calls_are_validated_timed_and_never_raise() -> None:
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    def typed(n: int) -> int:
        return n * 2

    box = Toolbox([function_tool(slow), function_tool(typed)], timeout=0.3)
    calls = [ToolCall("typed", {"n": "21"}), ToolCall("typed", {"n": "many"}), ToolCall("slow", {"seconds": 5}),
             ToolCall("missing", {})]  # fmt: skip
    asyncio.run(box.run_all(calls))
    assert calls[0].result == 42 and calls[0].ok
    assert calls[1].error is not None and calls[1].error.startswith("invalid arguments: n:")
    assert calls[2].error == "TimeoutError: no result within 0.3 s"
    assert calls[3].error == "LookupError: no tool named 'missing' was offered"
    assert calls[1].as_step() == {"type": "function_result", "name": "typed", "call_id": None,
                                  "result": {"error": calls[1].error}, "is_error": True}  # fmt: skip


# -- the loop, in a real shell -----------------------------------------------------------------------------

DEFINITIONS = '''
import asyncio, time
import pandas as pd
from PIL import Image
from gemini_magics import tool

calls = []
ended = []

def get_weather(city: str, unit: str = "c") -> dict:
    """The weather now.

    Args:
        city: The city to look up.
        unit: c or f.
    """
    calls.append(("get_weather", city, time.monotonic()))
    time.sleep(0.3)
    ended.append(time.monotonic())
    return {"city": city, "temp": 21}

def get_time(zone: str) -> str:
    """The time in a zone."""
    calls.append(("get_time", zone, time.monotonic()))
    time.sleep(0.3)
    ended.append(time.monotonic())
    return "12:00"

def boom(x: int) -> int:
    """Always fails."""
    raise ValueError("the sensor is offline")

async def lookup(term: str) -> list:
    """An async lookup."""
    await asyncio.sleep(0.01)
    return [term, term.upper()]

def table() -> object:
    """A table."""
    return pd.DataFrame({"a": [1, 2, 3]})

def picture() -> object:
    """An image."""
    return Image.new("RGB", (4, 4), "red")

@tool(confirm=True)
def delete_everything(path: str) -> str:
    """Deletes a path."""
    calls.append(("delete_everything", path, time.monotonic()))
    return "deleted"
'''


@pytest.fixture
def tools_shell(shell: Shell) -> Shell:
    shell.run(DEFINITIONS)
    return shell


def test_a_function_tool_is_called_and_its_result_reaches_the_model(tools_shell: Shell, server: Any) -> None:
    result = tools_shell.run("%%interact --tools get_weather -o answer\nWhat does get_weather say?")
    first, second = creates(server)[-2:]
    assert first["tools"][0]["name"] == "get_weather" and first["tools"][0]["parameters"]["required"] == ["city"]
    (sent,) = second["input"]
    assert sent["type"] == "function_result" and sent["name"] == "get_weather"
    assert sent["result"] == {"city": "example city", "temp": 21} and second["previous_interaction_id"] == result.interactions[0].id
    assert result.text == 'From the tool results: `get_weather` returned {"city": "example city", "temp": 21}.'
    (call,) = result.tool_calls
    assert (call.name, call.arguments, call.error) == ("get_weather", {"city": "example city", "unit": "example unit"}, None)
    assert call.seconds >= 0.3 and call.step == 1  # the tool itself sleeps 0.3 s
    markdown = result._repr_mimebundle_()[0]["text/markdown"]
    assert markdown.count("get_weather(") == 1 and "<summary>✓ get_weather(city=example city, unit=example unit) · {" in markdown
    # the chain holds the whole turn: the next cell continues from the last interaction of the loop
    assert tools_shell.magics.chains.turns("default")[-1].interaction_ids == [i.id for i in result.interactions]


def test_several_calls_of_one_step_run_concurrently(tools_shell: Shell, server: Any) -> None:
    result = tools_shell.run("%%interact --tools get_weather,get_time\nUse get_weather and get_time.")
    starts = [t for _, _, t in tools_shell.ip.user_ns["calls"]]
    assert len(starts) == 2 and max(starts) < min(tools_shell.ip.user_ns["ended"])  # both began before either ended
    assert [c.name for c in result.tool_calls] == ["get_weather", "get_time"]
    assert [s["name"] for s in creates(server)[-1]["input"]] == ["get_weather", "get_time"]


def test_an_exception_in_a_tool_goes_back_to_the_model(tools_shell: Shell, server: Any) -> None:
    result = tools_shell.run("%%interact --tools boom\nCall boom.")
    (sent,) = creates(server)[-1]["input"]
    assert sent["is_error"] is True and sent["result"] == {"error": "ValueError: the sensor is offline"}
    assert result.tool_calls[0].error == "ValueError: the sensor is offline"
    assert "<summary>✗ boom(x=1) · error: ValueError: the sensor is offline</summary>" in result._repr_mimebundle_()[0]["text/markdown"]


def test_max_steps_caps_the_loop_in_one_line(tools_shell: Shell) -> None:
    before = [t.interaction_id for t in tools_shell.magics.chains.turns("default")]
    tools_shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Tool-Rounds": "9"}')
    error = tools_shell.fail("%%interact --tools get_time --max-steps 2 -o never\nAsk get_time forever.")
    assert type(error).__name__ == "UsageError" and "\n" not in str(error)
    assert "--max-steps 2 reached and the model still asks for get_time" in str(error)
    assert [t.interaction_id for t in tools_shell.magics.chains.turns("default")] == before
    assert "never" not in tools_shell.ip.user_ns and len(tools_shell.ip.run_line_magic("interact", "last").tool_calls) == 2


def test_no_store_sends_the_whole_history_with_thought_signatures(tools_shell: Shell, server: Any) -> None:
    result = tools_shell.run("%%interact --no-store --thinking low --chain local --tools get_weather\nUse get_weather.")
    follow_up = creates(server)[-1]
    assert follow_up["store"] is False and "previous_interaction_id" not in follow_up
    assert [s["type"] for s in follow_up["input"]] == ["user_input", "thought", "function_call", "function_result"]
    assert follow_up["input"][1]["signature"] and follow_up["input"][2]["name"] == "get_weather"
    assert result.text.startswith("From the tool results") and result.stored is False
    turn = tools_shell.magics.chains.turns("local")[-1]
    assert turn.interaction_id is None and [s["type"] for s in turn.steps][-2:] == ["thought", "model_output"]


def test_async_functions_and_results_that_are_not_json(tools_shell: Shell, server: Any) -> None:
    tools_shell.run("%%interact --tools lookup,table,picture\nUse lookup, table and picture.")
    sent = {s["name"]: s["result"] for s in creates(server)[-1]["input"]}
    assert sent["lookup"] == ["example term", "EXAMPLE TERM"]
    assert sent["table"].startswith("DataFrame table: 3 rows × 1 columns")
    assert sent["picture"][0]["type"] == "image" and sent["picture"][0]["mime_type"] == "image/png"


def test_schema_and_tools_together(tools_shell: Shell) -> None:
    tools_shell.ip.user_ns["Report"] = {"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "integer"}},
                                        "required": ["city", "temp"]}  # fmt: skip
    result = tools_shell.run("%%interact --tools get_weather --schema Report\nUse get_weather, then report.")
    assert result.tool_calls[0].name == "get_weather" and set(result.data) == {"city", "temp"}


def test_confirm_asks_and_a_denial_goes_back_to_the_model(tools_shell: Shell, server: Any, monkeypatch: Any) -> None:
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    denied = tools_shell.run("%%interact --tools delete_everything\nCall delete_everything.")
    assert (denied.tool_calls[0].decision, denied.tool_calls[0].error) == ("denied by you", "not run: denied by you")
    assert creates(server)[-1]["input"][0]["result"] == {"error": "not run: denied by you"}
    assert [c for c in tools_shell.ip.user_ns["calls"] if c[0] == "delete_everything"] == []
    bundle, metadata = denied._repr_mimebundle_()
    assert "<summary>– delete_everything(path=example path) · denied by you</summary>" in bundle["text/markdown"]  # no "error"
    assert metadata["gemini_magics"]["tool_calls"][0]["decision"] == "denied by you"
    approved = tools_shell.run("%%interact --tools delete_everything\nCall delete_everything.")
    assert approved.tool_calls[0].result == "deleted" and approved.tool_calls[0].decision == "approved by you"
    assert "<summary>✓ delete_everything(path=example path) · approved by you · deleted</summary>" in approved._repr_mimebundle_()[0]["text/markdown"]


def test_bad_tool_options_are_one_line(tools_shell: Shell) -> None:
    for line, expected in [
        ("--tools nothing_here", "--tools nothing_here: no such function in the kernel"),
        ("--tools pd", "--tools pd: expected a function, got module"),
        ("--tools get_weather --background", "--background cannot run kernel functions"),
        ("--tools get_weather --max-steps 0", "--max-steps must be at least 1"),
    ]:
        error = tools_shell.fail(f"%%interact {line}\nhi")
        assert expected in str(error) and "\n" not in str(error), str(error)


def test_a_refused_tool_mix_is_one_line(tools_shell: Shell) -> None:
    tools_shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Fail": "400:1"}')
    error = tools_shell.fail("%%interact --tools get_weather,google_search\nUse get_weather.")
    assert "400" in str(error) and "try them in separate cells" in str(error) and "\n" not in str(error)


# -- built-in tools on the local server ---------------------------------------------------------------------


def test_code_execution_really_runs_in_a_subprocess(shell: Shell, allow_local: Any) -> None:
    import os

    result = shell.run("%%interact --tools code_execution\nRun it:\n```python\nimport os\nprint(sum(range(10)), os.getpid())\n```")
    code_result = next(s for s in result.steps if s.type == "code_execution_result")
    total, pid = code_result.result.split()
    assert total == "45" and int(pid) != os.getpid() and not code_result.is_error
    assert "The code printed" in result.text
    failing = shell.run("%%interact --tools code_execution\n```python\nraise SystemExit('bad')\n```")
    assert next(s for s in failing.steps if s.type == "code_execution_result").is_error


@pytest.fixture
def page() -> Iterator[str]:
    body = b"<html><head><title>Tea Notes</title><script>var x = 1;</script></head><body><h1>Oolong</h1><p>Semi-oxidised tea.</p></body></html>"
    with loopback_page(body, "/tea") as url:
        yield url


def test_url_context_really_fetches_a_loopback_page(shell: Shell, page: str, allow_local: Any) -> None:
    result = shell.run(f"%%interact --tools url_context\nSummarise {page}")
    fetched = next(s for s in result.steps if s.type == "url_context_result")
    assert fetched.result == [{"url": page, "status": "success", "title": "Tea Notes"}]
    assert "Oolong" in result.text and "Semi-oxidised tea." in result.text and "var x" not in result.text


def test_google_search_says_it_cannot_work_offline(shell: Shell) -> None:
    result = shell.run("%%interact --tools google_search\nLatest tea news")
    assert "not available offline" in result.text
    assert any(s.type == "google_search_call" for s in result.steps)


def test_live_view_cards_and_approval_in_a_widget_view() -> None:
    pytest.importorskip("ipywidgets")
    from gemini_magics.render.widgets import WidgetView
    from gemini_magics.types.interaction import Interaction

    view = WidgetView(model="m")
    calls = [{"type": "function_call", "id": i, "name": n, "arguments": a}
             for i, n, a in (("c1", "get_weather", {"city": "Paris"}), ("c2", "boom", {}), ("c3", "delete", {"path": "/x"}))]  # fmt: skip
    view.finish(Interaction.model_validate({"id": "v1_a", "status": "requires_action", "steps": calls}))
    cards = [view._blocks[b.key] for b in view.view.blocks()]
    assert [c.block.title for c in cards] == ["… get_weather(city=Paris)", "… boom()", "… delete(path=/x)"]

    async def approve(click: int | None) -> bool | str:
        decided = view.approve(ToolCall("delete", {"path": "/x"}, "c3"))
        (row,) = cards[2].decision.children  # Approve / Deny sit inside the call's own card
        if click is None:
            view._on_stop(None)
        else:
            row.children[click].click()
        return await decided

    assert asyncio.run(approve(2)) is False  # Deny
    assert asyncio.run(approve(None)) == "stopped before approval"  # Stop is not a denial
    assert asyncio.run(approve(1)) is True  # Approve
    view.tool_results([ToolCall("get_weather", {"city": "Paris"}, "c1", result={"temp": 21}, seconds=0.25),
                       ToolCall("boom", {}, "c2", error="ValueError: no", seconds=0.01),
                       ToolCall("delete", {"path": "/x"}, "c3", result="gone", seconds=0.02, decision="approved by you")])  # fmt: skip
    blocks = view.view.blocks()
    assert [b.title for b in blocks] == ["✓ get_weather(city=Paris) · 0.25 s · {\"temp\": 21}",
                                         "✗ boom() · 0.01 s · error: ValueError: no",
                                         "✓ delete(path=/x) · 0.02 s · approved by you · gone"]  # fmt: skip
    view._render()
    assert all(view._blocks[b.key] is card for b, card in zip(blocks, cards, strict=True))  # the same cards, updated in place
    assert cards[2].decision.children == () and "gm-tool-error" in cards[1].widget._dom_classes


def test_the_tool_loop_in_a_real_kernel_with_its_live_view(tmp_path: Any) -> None:
    from test_notebooks import run_cells

    cells = [
        "%load_ext gemini_magics",
        '%config InteractMagics.headers = {"X-Scripted-Delay-Ms": "20", "X-Scripted-Deltas": "8"}',
        'def get_weather(city: str) -> dict:\n    """The weather now."""\n    return {"city": city, "temp": 21}',
        "%%interact --tools get_weather -o answer\nWhat does get_weather say?",
        "print(answer.tool_calls[0].result['temp'], len(answer.interactions))",
    ]
    notebook = run_cells(cells, tmp_path)
    (result,) = [o for o in notebook.cells[3].outputs if o.output_type == "display_data"]  # a turn, under a display id
    assert "<summary>✓ get_weather(city=" in result.data["text/markdown"]
    assert result.metadata["gemini_magics"]["tool_calls"][0]["ok"] is True
    assert notebook.cells[4].outputs[0].text.strip() == "21 2"


@pytest.mark.serial  # signals the whole test process: alone, not beside another file's tests
def test_an_interrupted_tool_loop_keeps_every_round_so_far(tools_shell: Shell) -> None:
    import os
    import signal

    tools_shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "100", "X-Scripted-Deltas": "60"}')
    threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT)).start()  # while the answer after the call streams
    error = tools_shell.fail("%%interact --tools get_time -o never\nAsk get_time, then tell a long story.")
    assert str(error).startswith("interrupted:") and "never" not in tools_shell.ip.user_ns
    partial = tools_shell.ip.run_line_magic("interact", "last")
    assert len(partial.interactions) == 2 and [c.name for c in partial.tool_calls] == ["get_time"]
    assert partial.interactions[0].status == "requires_action" and partial.outcome == "interrupted"


def test_a_blocked_kernel_cannot_approve_and_says_why() -> None:
    pytest.importorskip("ipywidgets")
    from gemini_magics.render.widgets import WidgetView

    @tool(confirm=True)
    def wipe(path: str) -> str:
        """Wipes a path."""
        return "wiped"

    blocked = WidgetView(model="m", stoppable=False, interactive=False)  # a magic stacked above %%interact
    call = ToolCall("wipe", {"path": "/tmp/x"})
    asyncio.run(Toolbox([function_tool(wipe)]).run(call, blocked.approve))
    assert call.result is None and call.error is not None and "a magic stacked above %%interact" in call.error


def test_file_search_over_a_local_store_cites_the_files_it_found(shell: Shell, tmp_path: Any) -> None:
    (tmp_path / "tea.md").write_text("# Tea\n\nOolong tea is partly oxidised.\n\nIt comes from Fujian and Taiwan.")
    (tmp_path / "kites.txt").write_text("Kites fly best in a steady wind.\n\nThe oldest kites came from China.")
    made = shell.run(f"%interact store create notes {tmp_path / 'tea.md'} {tmp_path / 'kites.txt'}")
    assert [row[2] for row in made.rows] == ["1", "1"] and "--tools file_search:" in made.title  # one passage each
    store = made.title.split()[0]
    result = shell.run(f"%%interact --tools file_search:{store.removeprefix('fileSearchStores/')}\nWhere does oolong tea come from?")
    (found,) = [s for s in result.steps if s.type == "file_search_result"]
    assert [p["title"] for p in found.result] == ["tea.md"]  # BM25 over FTS5: only the passage about oolong
    assert "searched on this machine: SQLite FTS5" in found.model_extra["x_gemini_magics_local"]
    markdown = result._repr_mimebundle_()[0]["text/markdown"]
    assert "Fujian and Taiwan.[1]" in markdown and "1. tea.md (files/" in markdown  # a file citation, as a footnote
    assert "<summary>✓ file search · Where does oolong tea come from? → passages · 1</summary>" in markdown
    assert shell.run(f"%interact store get {store}").rows[0][2] == "2"
    error = shell.fail(f"%interact store create empty {tmp_path / 'missing.txt'}")
    assert "missing.txt not found" in str(error) and "\n" not in str(error)


def test_a_store_takes_text_only_on_the_local_server(server: Any) -> None:
    from gemini_magics import Client
    from gemini_magics._exceptions import BadRequestError

    with Client(base_url=server.base_url) as client:
        store = client.file_search_stores.create(display_name="pictures")
        image = client.files.upload(b"\x89PNG\r\n\x1a\n" + b"0" * 64, mime_type="image/png")
        with pytest.raises(BadRequestError, match="indexes text files only"):
            client.file_search_stores.import_file(store["name"], file_name=image.name)
        client.file_search_stores.delete(store["name"])
