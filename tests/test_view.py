"""The pure view model (events in, blocks out) for every step type of both schema generations,
and the widget view's bounded update rate on a 10,000-delta stream."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from pydantic import TypeAdapter

from gemini_magics import Client
from gemini_magics.local.wire import LegacyTranslator
from gemini_magics.render.view import Block, ViewModel, escape_markdown_html, partial_json
from gemini_magics.types import InteractionEvent

EVENTS: TypeAdapter[InteractionEvent] = TypeAdapter(InteractionEvent)


def png() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), "green").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def step_events(steps: list[tuple[dict[str, Any], list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """A steps-schema stream: each (start step, deltas) pair becomes start/delta.../stop."""
    out = [
        {
            "event_type": "interaction.created",
            "interaction": {"id": "v1_v", "status": "in_progress"},
            "event_id": "v1_v:1",
        }
    ]
    for index, (start, deltas) in enumerate(steps):
        out.append({"event_type": "step.start", "index": index, "step": start})
        out.extend({"event_type": "step.delta", "index": index, "delta": d} for d in deltas)
        out.append({"event_type": "step.stop", "index": index})
    out.append({"event_type": "interaction.completed", "interaction": {"id": "v1_v", "status": "completed",
                "usage": {"total_input_tokens": 5, "total_output_tokens": 7, "total_thought_tokens": 2, "total_cached_tokens": 1}}})  # fmt: skip
    for n, event in enumerate(out, 1):
        event["event_id"] = f"v1_v:{n}"
    return out


def legacy(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    translator = LegacyTranslator()
    return [e for event in events for e in translator.translate(event)]


IMAGE = png()
EVERY_STEP: list[tuple[dict[str, Any], list[dict[str, Any]]]] = [
    (
        {"type": "thought"},
        [
            {"type": "thought_summary", "content": {"type": "text", "text": "Planning <b>it</b>"}},
            {"type": "thought_signature", "signature": "c2ln"},
        ],
    ),
    (
        {"type": "function_call", "id": "c1", "name": "get_weather", "arguments": {}},
        [
            {"type": "arguments_delta", "arguments": '{"city": '},
            {"type": "arguments_delta", "arguments": '"Paris"}'},
        ],
    ),
    ({"type": "function_result", "call_id": "c1", "name": "get_weather", "result": {"c": 21}}, []),
    (
        {"type": "code_execution_call", "id": "x1", "arguments": {"code": "print(1)", "language": "python"}},
        [],
    ),
    ({"type": "code_execution_result", "call_id": "x1", "result": "1\n"}, []),
    ({"type": "google_search_call", "id": "s1", "arguments": {"queries": ["tea history"]}}, []),
    (
        {
            "type": "google_search_result",
            "call_id": "s1",
            "result": [{"title": "Tea", "url": "https://t.example"}],
        },
        [],
    ),
    ({"type": "url_context_call", "id": "u1", "arguments": {"urls": ["https://u.example"]}}, []),
    (
        {
            "type": "url_context_result",
            "call_id": "u1",
            "result": [{"url": "https://u.example", "status": "success"}],
        },
        [],
    ),
    (
        {
            "type": "mcp_server_tool_call",
            "id": "m1",
            "name": "lookup",
            "server_name": "srv",
            "arguments": {"q": 1},
        },
        [],
    ),
    (
        {
            "type": "mcp_server_tool_result",
            "call_id": "m1",
            "name": "lookup",
            "server_name": "srv",
            "result": "ok",
        },
        [],
    ),
    ({"type": "file_search_result", "call_id": "f1", "result": [{"title": "doc", "text": "x"}]}, []),
    ({"type": "model_output"}, [{"type": "image", "mime_type": "image/png", "data": IMAGE}]),
    (
        {"type": "model_output"},
        [{"type": "text", "text": "# Title\n\n- a <script>x</script>\n"}, {"type": "text", "text": "`<ok>`"}],
    ),
]
STEPS_ONLY: list[tuple[dict[str, Any], list[dict[str, Any]]]] = [
    ({"type": "file_search_call", "id": "f0"}, []),
    ({"type": "google_maps_call", "id": "g1", "arguments": {"queries": ["cafe"]}}, []),
    ({"type": "google_maps_result", "call_id": "g1", "result": [{"places": [{"name": "Cafe"}]}]}, []),
    (
        {
            "type": "retrieval_call",
            "id": "r1",
            "arguments": {"queries": ["q"]},
            "retrieval_type": "rag_store",
        },
        [],
    ),
    ({"type": "retrieval_result", "call_id": "r1"}, []),
    ({"type": "tool_search_call", "id": "t1", "arguments": {"function_names": ["f"]}}, []),
    ({"type": "tool_search_result", "call_id": "t1", "result": [{"name": "f"}]}, []),
    ({"type": "processing_call", "id": "p1"}, []),
    ({"type": "processing_result", "call_id": "p1"}, []),
    ({"type": "brand_new_step", "id": "n1", "payload": 1}, []),
]


def fold(raw: list[dict[str, Any]], **kwargs: Any) -> ViewModel:
    view = ViewModel(model="gemini-test", chain="default", **kwargs)
    for event in raw:
        view.feed(EVENTS.validate_python(event))
    return view


def check_every_step(blocks: list[Block]) -> None:
    """One card a tool call: each call and its result (matched by id) share a card, marked by how it ended."""
    kinds = [b.kind for b in blocks]
    titles = [b.title for b in blocks]
    assert kinds[0] == "thought" and blocks[0].body == "Planning &lt;b>it&lt;/b>"
    assert titles[1] == '✓ get_weather(city=Paris) → {"c": 21}' and '"city": "Paris"' in blocks[1].body and '"c": 21' in blocks[1].body
    assert titles[2] == "✓ code execution → code output" and blocks[2].body.startswith("```python\nprint(1)\n```") and "1" in blocks[2].body
    assert titles[3] == "✓ search · tea history → search results · 1"
    assert "Tea" in blocks[3].body and "https://t.example" in blocks[3].body
    assert titles[4] == "✓ read URLs · https://u.example → URL results" and "success" in blocks[4].body
    assert titles[5] == "✓ mcp server tool call · lookup → ok"
    assert titles[6] == "passages · 1"  # a result with no call to join keeps a card of its own
    assert [b.call_id for b in blocks[1:6]] == ["c1", "x1", "s1", "u1", "m1"] and {b.state for b in blocks[1:6]} == {"ok"}
    image = blocks[7]
    assert image.kind == "image" and image.mime_type == "image/png" and image.data.startswith(b"\x89PNG")
    text = blocks[8]
    assert (
        text.kind == "markdown"
        and "&lt;script>" in text.body
        and "<script>" not in text.body.replace("`<ok>`", "")
    )
    assert "`<ok>`" in text.body  # code spans keep their text


def test_every_step_type_in_the_steps_schema() -> None:
    view = fold(step_events(EVERY_STEP + STEPS_ONLY))
    blocks = view.blocks()
    check_every_step(blocks)
    extra = [b.title for b in blocks[9:]]
    assert extra == ["… file search", '✓ google maps call → [{"places": [{"name": "Cafe"}]}]', "✓ retrieval call → done",
                     '✓ tool search call → [{"name": "f"}]', "✓ processing call → done", "brand new step"]  # fmt: skip
    assert all(b.kind == "tool" for b in blocks[9:]) and blocks[9].state == "called"


def test_every_step_type_in_the_legacy_schema() -> None:
    view = fold(legacy(step_events(EVERY_STEP)))
    assert view.interaction.schema_generation == "legacy"
    check_every_step(view.blocks())


def test_footer_header_and_usage() -> None:
    view = fold(step_events(EVERY_STEP[-1:]))
    footer = view.footer(1.25)
    assert footer == "gemini-test · 5 in / 7 out / 2 thought / 1 cached tokens · 1.2 s · v1_v · chain default"
    assert view.header(0.5) == "gemini-test · completed · 0.5 s"


def test_structured_answers_become_a_json_tree_while_streaming() -> None:
    raw = step_events([({"type": "model_output"}, [{"type": "text", "text": '[{"name": "Ada", "year": 18'},
                                                   {"type": "text", "text": '15}, {"name": "Al'}])])  # fmt: skip
    view = fold(raw[:-2], structured=True)  # still streaming
    block = view.blocks()[0]
    assert block.kind == "json" and block.data == [{"name": "Ada", "year": 1815}, {"name": "Al"}]
    assert partial_json('```json\n{"a": [1, 2') == {"a": [1, 2]}
    assert partial_json("") is None


def test_errors_become_error_blocks() -> None:
    raw = step_events([({"type": "model_output"}, [{"type": "text", "text": "partial"}])])[:-1]
    raw.append(
        {
            "event_type": "error",
            "error": {"code": "internal", "message": "model crashed <now>"},
            "event_id": "v1_v:99",
        }
    )
    blocks = fold(raw).blocks()
    assert (
        blocks[-1].kind == "error"
        and blocks[-1].body == "model crashed &lt;now>"
        and "internal" in blocks[-1].title
    )


def test_escape_keeps_code_fences_verbatim() -> None:
    text = "a <b> c\n```html\n<div>x</div>\n```\n<i>"
    assert escape_markdown_html(text) == "a &lt;b> c\n```html\n<div>x</div>\n```\n&lt;i>"


def test_ten_thousand_deltas_make_a_bounded_number_of_widget_updates(steps_client: Client) -> None:
    pytest.importorskip("ipywidgets")
    from gemini_magics.render.widgets import MIN_INTERVAL, WidgetView

    view = WidgetView(model="gemini-test")
    renders: list[float] = []
    real_render = view._render

    def render() -> None:
        real_render()
        renders.append(view._last_render)

    view._render = render  # type: ignore[method-assign]
    view.__enter__()
    try:
        with steps_client.interactions.create(model="m", input="long", stream=True,
                                              extra_headers={"X-Scripted-Deltas": "10000"}) as stream:  # fmt: skip
            deltas = 0
            for event in stream:
                deltas += event.event_type == "step.delta"
                view.event(event)
            final = stream.interaction
        view.finish(final)
    finally:
        view.__exit__(None, None, None)
    assert deltas == 10000
    gaps = [b - a for a, b in zip(renders[:-2], renders[1:-1], strict=True)]  # the last render is finish()'s own
    assert gaps and min(gaps) >= MIN_INTERVAL, min(gaps)  # never two renders within the interval
    assert view.render_count == len(renders) < 2000
    markdown = view._blocks["0.0"]._out.outputs[0]["data"]["text/markdown"]
    assert markdown == escape_markdown_html(final.text) and len(final.text) > 10000


def test_terminal_view_prints_text_as_it_streams(
    capsys: pytest.CaptureFixture[str], steps_client: Client
) -> None:
    from gemini_magics.render.live import NullView, TerminalView, make_live_view

    class TerminalInteractiveShell:  # what make_live_view recognises a terminal by
        kernel = None

    view = make_live_view(TerminalInteractiveShell(), enabled=True, model="m", stream=True)
    assert isinstance(view, TerminalView)
    assert isinstance(
        make_live_view(TerminalInteractiveShell(), enabled=False, model="m", stream=True), NullView
    )
    with steps_client.interactions.create(model="m", input="print me", stream=True) as stream, view:
        for event in stream:
            view.event(event)
        view.finish(stream.interaction)
    assert capsys.readouterr().out == stream.interaction.text + "\n\n"


def test_live_false_means_no_live_view() -> None:
    from gemini_magics.render.live import NullView, make_live_view

    class Kernelish:
        kernel = object()

    assert isinstance(make_live_view(Kernelish(), enabled=False, model="m", stream=True), NullView)
    assert type(make_live_view(Kernelish(), enabled=True, model="m", stream=True)).__name__ == "WidgetView"


def test_live_views_tick_on_an_event_loop_not_on_threads_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import threading
    import time

    pytest.importorskip("ipywidgets")
    from gemini_magics._threads import SHARED_LOOP
    from gemini_magics.render.widgets import BackgroundWidget, WidgetView
    from gemini_magics.run.handle import BackgroundRun

    class Handle:
        updates: list[dict[str, Any]] = []

        def update(self, bundle: dict[str, Any], raw: bool) -> None:
            self.updates.append(bundle)

    monkeypatch.setattr("gemini_magics.render.widgets.display", lambda *a, **k: Handle())
    SHARED_LOOP.get()
    before = set(threading.enumerate())
    header_threads: list[str] = []

    async def live_cell() -> None:
        view = WidgetView(model="gemini-test")
        real = view._header_html
        view._header_html = lambda: (header_threads.append(threading.current_thread().name), real())[1]  # type: ignore[method-assign]
        with view:
            await asyncio.sleep(0.5)  # no token yet: the elapsed timer ticks

    asyncio.run(live_cell())
    run = BackgroundRun("v1_x", "agent", None, "default")
    widget = BackgroundWidget(run, None, ticks=SHARED_LOOP.get())  # where its follower would run
    labels = []
    while len(set(labels)) < 2:  # the status line is refreshed: the run's status changes, the label follows
        run.status = f"step {len(labels)}"
        labels.append(widget._label.value)
        time.sleep(0.2)
    widget.finish(run)
    final = Handle.updates[-1]["text/plain"]
    time.sleep(0.6)
    assert Handle.updates[-1]["text/plain"] == final  # nothing refreshed after the final display
    assert header_threads and set(header_threads) == {threading.main_thread().name}  # the cell's own loop
    assert set(threading.enumerate()) <= before  # neither view started a thread


def test_progress_lines_are_cut_at_a_word_with_an_ellipsis() -> None:
    from gemini_magics.render.view import _compact

    text = "Plan: understand the question about barn owls; search for recent reliable sources; read them"
    cut = _compact(text, 60)
    assert len(cut) <= 60 and cut.endswith("…") and text.startswith(cut[:-1])
    assert text[len(cut) - 1] in " ,;:"  # the kept text ends with a whole word
    assert _compact("short", 60) == "short" and _compact("x" * 100, 10) == "x" * 9 + "…"  # one long word: cut


def test_a_stopped_runs_last_progress_line_has_no_eta() -> None:
    from gemini_magics.render.progress import progress_text
    from gemini_magics.run.rows import RowStats

    stats = RowStats(total=40, done=12, started=0.0, ended=4.0)
    assert "ETA" in progress_text(stats)  # while it runs
    final = progress_text(stats, final=True)
    assert "ETA" not in final and final.startswith("12/40 rows") and "3.0 rows/s" in final


def test_save_buttons_write_readable_names_to_the_chosen_folder(tmp_path: Any) -> None:
    pytest.importorskip("ipywidgets")
    import base64

    from gemini_magics.local.engines.writer import draw_png
    from gemini_magics.render.saving import readable_stem
    from gemini_magics.render.widgets import Saving, WidgetView
    from gemini_magics.types.interaction import Interaction

    assert readable_stem("A watercolour lighthouse at dawn, {{style}} please!") == "a-watercolour-lighthouse-at-dawn-please"
    assert readable_stem("{{only}}  ") == "gemini"
    png = base64.b64encode(draw_png("kite", (64, 40), "image/png")).decode()
    view = WidgetView(model="m", saving=Saving(str(tmp_path / "shots"), "Draw a kite over the sea"))
    view.finish(Interaction.model_validate({"id": "v1_a", "status": "completed", "steps": [
        {"type": "model_output", "content": [{"type": "image", "mime_type": "image/png", "data": png}]}]}))  # fmt: skip
    view._render()
    (card,) = view._blocks.values()
    row = card.widget.children[1]
    save, caption = row.children  # the button first: its place never depends on the caption
    save.click()
    save.click()
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == ["draw-a-kite-over-the-sea-2.png", "draw-a-kite-over-the-sea.png"]
    assert (tmp_path / "shots" / "draw-a-kite-over-the-sea.png").read_bytes() == base64.b64decode(png)
    assert "saved to" in caption.value and "draw-a-kite-over-the-sea-2.png" in caption.value


def test_the_live_header_names_what_answers_once_the_server_says() -> None:
    from gemini_magics.types.interaction import Interaction

    view = ViewModel(model="gemini-3-flash-preview")
    assert view.header(0.2).startswith("gemini-3-flash-preview · ")
    view.finish(Interaction.model_validate({"id": "v1_h", "status": "in_progress", "x_gemini_magics_served_by": "local:SmolLM2-135M-Instruct"}))
    assert view.header(0.5) == "local:SmolLM2-135M-Instruct (asked for gemini-3-flash-preview) · in_progress · 0.5 s"


def test_citations_become_numbered_footnotes_one_per_source() -> None:
    from gemini_magics.render.view import footnoted

    text = "Tea came from China. Oolong is partly oxidised. Café culture grew."
    end = lambda part: len(text[: text.index(part) + len(part)].encode())  # noqa: E731 - byte offsets, as the API's
    notes = [{"type": "url_citation", "url": "https://a.example/tea", "title": "Tea history", "end_index": end("China.")},
             {"type": "url_citation", "url": "javascript:alert(1)", "title": "Oolong <b>", "end_index": end("oxidised.")},
             {"type": "url_citation", "url": "https://a.example/tea", "title": "Tea history", "end_index": end("grew.")},
             {"type": "file_citation", "file_name": "notes.txt", "page_number": 2, "end_index": end("grew.")},
             {"type": "speech_metadata", "speaker": "A", "end_index": 3}]  # fmt: skip
    body = footnoted(text, notes)
    assert body.startswith("Tea came from China.[1] Oolong is partly oxidised.[2] Café culture grew.[1][3]")
    assert "1. [Tea history](<https://a.example/tea>)" in body and "3. notes.txt, page 2" in body
    assert "2. Oolong &lt;b> (javascript:alert(1))" in body and "](<javascript" not in body  # no link but http(s)
    assert footnoted("plain <i>", []) == "plain &lt;i>"


def test_builtin_tools_are_declared_as_the_api_takes_them() -> None:
    from gemini_magics.errors import OptionError
    from gemini_magics.tools import Toolbox, resolve_tools

    _, builtins = resolve_tools(["google_maps", "file_search:notes+fileSearchStores/b", "retrieval"], {})
    assert Toolbox([], builtins).declarations() == [
        {"type": "google_maps"}, {"type": "file_search", "file_search_store_names": ["fileSearchStores/notes", "fileSearchStores/b"]},
        {"type": "retrieval"}]  # fmt: skip
    for bad, said in (("file_search", "needs the stores to search"), ("google_maps:x", "only file_search takes names")):
        with pytest.raises(OptionError, match=said):
            resolve_tools([bad], {})


def test_progress_lines_name_media_by_their_kind() -> None:
    from gemini_magics.render.view import progress_lines
    from gemini_magics.types.interaction import Interaction

    streaming = Interaction.model_validate({"id": "v1_m", "status": "in_progress", "steps": [
        {"type": "model_output", "content": [{"type": "video", "mime_type": "video/webm", "data": "AAAA" * 600}]}]})  # fmt: skip
    assert progress_lines(streaming) == ["Media: video · video/webm · receiving 1 KB"]
