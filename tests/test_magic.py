"""%%interact in a real IPython shell, against the embedded scripted server over loopback.

Every check of what was sent is made on the request the server received (its request log).
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Shell, requests_to
from gemini_magics.render.result import InteractionResult


def last_create(server) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return requests_to(server, "/interactions")[-1]["json"]


def sent_parts(server) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    body = last_create(server)
    content = body["input"]
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if content and content[-1].get("type") == "user_input":
        return content[-1]["content"]
    return content


def test_load_ext_is_silent_fast_and_offline(capsys: pytest.CaptureFixture[str], server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    before = len(server.api.requests)
    sh = Shell(server.base_url)
    try:
        assert capsys.readouterr() == ("", "")
        assert (
            "interact" in sh.ip.magics_manager.magics["cell"]
            and "interact" in sh.ip.magics_manager.magics["line"]
        )
        assert len(server.api.requests) == before
    finally:
        sh.close()


def test_chain_continuity_is_kept_on_the_server(shell: Shell, server) -> None:  # type: ignore[no-untyped-def]
    first = shell.run("%%interact\nHi, my name is Phil.")
    second = shell.run("%%interact\nWhat is my name?")
    assert isinstance(first, InteractionResult) and second.text == "Your name is Phil."
    assert last_create(server)["previous_interaction_id"] == first.id
    assert [t.interaction_id for t in shell.magics.chains.turns("default")] == [first.id, second.id]


def test_rerunning_a_cell_replaces_its_turn(shell: Shell, server) -> None:  # type: ignore[no-untyped-def]
    # notebook cells, as a frontend runs them: each with its cell id
    first = shell.run("%%interact\nHi, my name is Ann.", cell_id="c1")
    shell.run("%%interact\nTell me a fact.", cell_id="c2")
    rerun = shell.run("%%interact\nTell me a fact.", cell_id="c2")
    assert last_create(server)["previous_interaction_id"] == first.id
    assert [t.interaction_id for t in shell.magics.chains.turns("default")] == [first.id, rerun.id]
    again = shell.run("%%interact\nHi, my name is Ann.", cell_id="c1")  # re-running the first cell rewinds to the start
    assert "previous_interaction_id" not in last_create(server)
    assert [t.interaction_id for t in shell.magics.chains.turns("default")] == [again.id]


def test_new_and_named_chains(shell: Shell, server) -> None:  # type: ignore[no-untyped-def]
    shell.run("%%interact\nHi, my name is Bob.")
    shell.run("%%interact --chain travel\nHi, my name is Carol.")
    assert "previous_interaction_id" not in last_create(server)
    assert shell.run("%%interact --chain travel\nWhat is my name?").text == "Your name is Carol."
    assert shell.run("%%interact\nWhat is my name?").text == "Your name is Bob."
    fresh = shell.run("%%interact --new\nWhat is my name?")
    assert (
        fresh.text == "You have not told me your name yet."
        and "previous_interaction_id" not in last_create(server)
    )
    assert len(shell.magics.chains.turns("default")) == 1 and len(shell.magics.chains.turns("travel")) == 2


def test_no_store_sends_the_full_history_with_thoughts(shell: Shell, server) -> None:  # type: ignore[no-untyped-def]
    shell.run("%%interact --no-store --thinking low --chain solo\nHi, my name is Dora.")
    answer = shell.run("%%interact --no-store --chain solo\nWhat is my name?")
    body = last_create(server)
    assert body["store"] is False and "previous_interaction_id" not in body
    types = [step["type"] for step in body["input"]]
    assert types == ["user_input", "thought", "model_output", "user_input"]
    assert body["input"][1]["signature"]
    assert (
        answer.text == "Your name is Dora." and shell.magics.chains.turns("solo")[-1].interaction_id is None
    )


class Obj:
    label = "attribute value"


@pytest.fixture
def namespace(shell: Shell, tmp_path: Path) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd
    from PIL import Image

    figure, axes = plt.subplots(figsize=(2, 2))
    axes.plot([1, 2, 3])
    png_path = tmp_path / "dot.png"
    Image.new("RGB", (4, 4), "red").save(png_path)
    wav = tmp_path / "beep.wav"
    wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28))
    notes = tmp_path / "notes.txt"
    notes.write_text("plain notes")
    values = {
        "name": "Ada", "n": 42, "ratio": 0.5, "cfg": {"k": [1, 2]}, "items": ["x", "y"], "obj": Obj(),
        "df": pd.DataFrame({"a": range(500), "b": ["long text value"] * 500}), "s": pd.Series([1, 2, 3], name="s"),
        "img": Image.new("RGB", (8, 8), "blue"), "arr": np.zeros((6, 6, 3), dtype=np.uint8), "fig": figure,
        "png_path": png_path, "wav": wav, "notes": notes, "raw": png_path.read_bytes(), "text_bytes": b"hello bytes",
    }  # fmt: skip
    shell.ip.user_ns.update(values)
    yield values
    plt.close(figure)


@pytest.mark.parametrize(
    ("reference", "check"),
    [
        ("{{name}}", lambda p: p == [{"type": "text", "text": "before Ada after"}]),
        ("{{n}}", lambda p: p[0]["text"] == "before 42 after"),
        ("{{cfg}}", lambda p: p[0]["text"] == 'before {"k": [1, 2]} after'),
        ("{{items}}", lambda p: p[0]["text"] == 'before ["x", "y"] after'),
        ("{{obj.label}}", lambda p: p[0]["text"] == "before attribute value after"),
        ("{{items[1]}}", lambda p: p[0]["text"] == "before y after"),
        ('{{cfg["k"]}}', lambda p: p[0]["text"] == "before [1, 2] after"),
        ("{{cfg['k'][0]}}", lambda p: p[0]["text"] == "before 1 after"),
        (
            "{{df}}",
            lambda p: (
                "DataFrame df: 500 rows × 2 columns" in p[0]["text"]
                and "budget" in p[0]["text"]
                and len(p[0]["text"]) < 4100
            ),
        ),
        ("{{s}}", lambda p: "Series s: 3 rows × 1 columns" in p[0]["text"]),
        ("{{img}}", lambda p: p[1]["type"] == "image" and p[1]["mime_type"] == "image/png"),
        (
            "{{arr}}",
            lambda p: p[1]["type"] == "image" and base64.b64decode(p[1]["data"]).startswith(b"\x89PNG"),
        ),
        ("{{fig}}", lambda p: p[1]["type"] == "image" and p[1]["mime_type"] == "image/png"),
        ("{{png_path}}", lambda p: p[1] == {"type": "image", "mime_type": "image/png", "data": p[1]["data"]}),
        ("{{wav}}", lambda p: p[1]["type"] == "audio" and p[1]["mime_type"] in ("audio/wav", "audio/x-wav")),
        (
            "{{notes}}",
            lambda p: p[1]["type"] == "document" and base64.b64decode(p[1]["data"]) == b"plain notes",
        ),
        ("{{raw}}", lambda p: p[1]["type"] == "image" and p[1]["mime_type"] == "image/png"),
        ("{{text_bytes}}", lambda p: p[1]["type"] == "document" and p[1]["mime_type"] == "text/plain"),
    ],
)
def test_each_reference_becomes_the_right_part(
    shell: Shell, server, namespace, reference: str, check
) -> None:  # type: ignore[no-untyped-def]
    shell.run(f"%%interact --new\nbefore {reference} after")
    parts = sent_parts(server)
    assert check(parts), parts
    if parts[0]["type"] == "text" and len(parts) > 1:
        assert parts[0]["text"] == "before " and parts[-1]["text"] == " after"


def test_json_and_code_braces_are_untouched_and_escapes_are_literal(shell: Shell, server) -> None:  # type: ignore[no-untyped-def]
    shell.ip.user_ns["x"] = 7
    cell = 'Parse {"a": {"b": [1, 2]}} and f"{x}" and \\{{x}} and {{ x }} and {{ not a ref }}'
    shell.run(f"%%interact --new\n{cell}")
    assert (
        last_create(server)["input"]
        == 'Parse {"a": {"b": [1, 2]}} and f"{x}" and {{x}} and 7 and {{ not a ref }}'
    )


def test_schema_with_a_pydantic_model(shell: Shell) -> None:
    shell.run(
        "from pydantic import BaseModel\nclass Person(BaseModel):\n    person: str\n    city: str\n    year: int"
    )
    result = shell.run("%%interact --schema Person -o who\nAlice moved to Paris in 2019.")
    person = shell.ip.user_ns["who"].data
    assert type(person).__name__ == "Person" and (person.person, person.city, person.year) == (
        "Alice",
        "Paris",
        2019,
    )
    bundle, metadata = result._repr_mimebundle_()
    assert bundle["application/json"] == {"person": "Alice", "city": "Paris", "year": 2019}
    assert metadata["gemini_magics"]["interaction_id"] == result.id


def test_schema_with_a_json_schema_dict(shell: Shell, server) -> None:  # type: ignore[no-untyped-def]
    shell.ip.user_ns["spec"] = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name"],
    }
    result = shell.run("%%interact --schema spec\nBob is 31.")
    assert result.data == {"name": "Bob", "age": 31}
    assert last_create(server)["response_format"]["schema"]["required"] == ["name"]


def test_image_binds_pil_images_and_a_jpeg_bundle(shell: Shell, server) -> None:  # type: ignore[no-untyped-def]
    result = shell.run("%%interact --image -o pic\nA lighthouse at dawn")
    images = shell.ip.user_ns["pic"].images
    assert len(images) == 1 and images[0].size == (320, 200)
    bundle, _ = result._repr_mimebundle_()
    (embedded,) = re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", bundle["text/markdown"])
    assert base64.b64decode(embedded).startswith(b"\xff\xd8\xff")  # JPEG: what the API sends
    assert json.dumps(bundle).count(embedded) == 1 and not {"image/jpeg", "image/png"} & set(bundle)  # stored once
    assert any(f.get("type") == "image" for f in last_create(server)["response_format"])


def test_dry_run_sends_nothing_and_summarises_data(shell: Shell, server, namespace) -> None:  # type: ignore[no-untyped-def]
    before = len(requests_to(server, "/interactions"))
    shown = shell.run("%%interact --dry-run --temperature 0.3\nLook at {{img}}")
    assert len(requests_to(server, "/interactions")) == before
    text = repr(shown)
    assert "dry run, nothing sent" in text and "bytes image/png" in text and "iVBOR" not in text
    assert shown.request["generation_config"] == {"temperature": 0.3}
    assert shell.magics.chains.names() == []


def test_result_object_binding_silencing_and_determinism(shell: Shell) -> None:
    shell.run("%%interact -o first\nHello there")
    assert isinstance(shell.ip.user_ns["first"], InteractionResult)
    silenced = shell.ip.run_cell("%%interact --new\nHello there;\n")
    assert silenced.success
    a = shell.run("%%interact --new --chain d1\nSame question")
    b = shell.run("%%interact --new --chain d2\nSame question")
    assert a.id != b.id and a._repr_mimebundle_()[0] != {}
    bundle_a, bundle_b = a._repr_mimebundle_()[0], b._repr_mimebundle_()[0]
    assert {k: v.replace("d1", "") for k, v in bundle_a.items()} == {
        k: v.replace("d2", "") for k, v in bundle_b.items()
    }
    for attribute in ("id", "text", "outputs", "steps", "images", "data", "usage", "interaction"):
        getattr(a, attribute)


def test_a_failed_interaction_never_advances_the_chain(shell: Shell) -> None:
    first = shell.run("%%interact\nHi, my name is Eve.")
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Fail": "500:9"}')
    error = shell.fail("%%interact\nWhat is my name?")
    assert type(error).__name__ == "UsageError" and "500" in str(error)
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    assert [t.interaction_id for t in shell.magics.chains.turns("default")] == [first.id]


def test_background_binds_when_done_and_kernel_stays_free(shell: Shell) -> None:
    shell.ip.run_line_magic(
        "config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "40", "X-Scripted-Deltas": "10"}'
    )
    run = shell.run("%%interact --background -o report\nWrite a report")
    assert run.status == "in_progress" and "report" not in shell.ip.user_ns
    assert shell.run("1 + 1") == 2
    deadline = time.monotonic() + 20
    while "report" not in shell.ip.user_ns and time.monotonic() < deadline:
        time.sleep(0.05)
    assert shell.ip.user_ns["report"].text.startswith("**Scripted reply**")
    assert shell.magics.chains.turns("default")[-1].interaction_id == run.id


def test_subcommands(shell: Shell, capsys: pytest.CaptureFixture[str]) -> None:
    ip = shell.ip
    config = ip.run_line_magic("interact", "config")
    assert "not set" in repr(config) and "default" in repr(config)
    first = shell.run("%%interact -o r1\nHi, my name is Finn.")
    assert "default" in repr(ip.run_line_magic("interact", "chains"))
    history = repr(ip.run_line_magic("interact", "history"))
    assert first.id in history and "Hi, my name is Finn." in history
    usage = repr(ip.run_line_magic("interact", "usage"))
    assert "local:scripted (asked for gemini-3-flash-preview)" in usage  # what answered, as the footers say
    assert "gemini-3-flash-preview" in repr(ip.run_line_magic("interact", "models"))
    assert ip.run_line_magic("interact", f"get {first.id}").text == first.text
    assert ip.run_line_magic("interact", f"wait {first.id}").status == "completed"
    assert ip.run_line_magic("interact", "last").id == first.id
    ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "200", "X-Scripted-Deltas": "100"}')
    running = shell.run("%%interact --background\nslow one")
    ip.run_line_magic("interact", f"cancel {running.id}")
    assert "cancelled" in capsys.readouterr().out
    ip.run_line_magic("config", "InteractMagics.headers = {}")
    ip.run_line_magic("interact", f"delete {first.id}")
    assert "deleted" in capsys.readouterr().out
    ip.run_line_magic("interact", "reset")
    assert shell.magics.chains.turns("default") == []
    shell.run("%%interact --chain a\nx")
    ip.run_line_magic("interact", "reset --all")
    assert shell.magics.chains.names() == []
    ip.run_line_magic("interact", "help")
    assert "Line magic subcommands" in capsys.readouterr().out
    for sub in ("config", "history", "reset", "get", "usage"):
        ip.run_line_magic("interact", f"{sub} --help")
        assert f"interact {sub}" in capsys.readouterr().out


def test_help_page_has_examples(shell: Shell) -> None:
    doc = shell.magics.interact.__doc__
    assert "Examples" in doc and "--schema" in doc and "{{df}}" in doc


def test_uploads_big_files_through_the_files_api(shell: Shell, server, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import gemini_magics.inputs as inputs

    monkeypatch.setattr(inputs, "INLINE_LIMIT", 100)
    big = tmp_path / "big.txt"
    big.write_text("word " * 100)
    shell.ip.user_ns["big"] = big
    answer = shell.run("%%interact --new\nSummarise {{big}}")
    part = sent_parts(server)[1]
    assert part["type"] == "document" and part["uri"].split("/")[-2] == "files" and "data" not in part
    assert "word word" in answer.text


def test_a_schema_mismatch_is_one_line_and_keeps_the_raw_text(shell: Shell) -> None:
    # like the real API, the engine ignores keywords such as "pattern": validation here catches it
    shell.ip.user_ns["Code"] = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[0-9]+$"}},
                                "required": ["code"]}  # fmt: skip
    before = [t.interaction_id for t in shell.magics.chains.turns("default")]
    error = shell.fail("%%interact --schema Code\nThe code is Alpha.")
    assert type(error).__name__ == "UsageError" and "\n" not in str(error)
    assert "does not match --schema Code" in str(error) and "does not match '^[0-9]+$'" in str(error)
    assert [t.interaction_id for t in shell.magics.chains.turns("default")] == before
    assert shell.ip.run_line_magic("interact", "last").text == '{"code": "Alpha"}'


def test_the_embedded_server_is_the_default_and_announced_once(
    make_shell, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    shell = make_shell()
    shell.run("%%interact\nHi, my name is Lou.")
    first = capsys.readouterr().out
    assert (
        first.count("gemini-magics: no API key set, so using the embedded local server (engine: scripted")
        == 1
    )
    assert shell.run("%%interact\nWhat is my name?").text == "Your name is Lou."
    assert "embedded local server" not in capsys.readouterr().out
    backend = shell.magics.session.started_backend
    assert backend.kind == "local" and backend.base_url.startswith("http://127.0.0.1:")


def test_without_the_local_extra_the_hint_is_one_line(make_shell, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import sys

    monkeypatch.setitem(
        sys.modules, "gemini_magics.local", None
    )  # as if the 'local' extra were not installed
    error = make_shell().fail("%%interact\nhi")
    message = str(error)
    assert type(error).__name__ == "UsageError" and "\n" not in message
    assert "GEMINI_API_KEY" in message and "pip install 'gemini-magics[local]'" in message


def test_wait_without_an_id_waits_for_the_latest_background_cell(shell: Shell) -> None:
    shell.ip.run_line_magic(
        "config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "30", "X-Scripted-Deltas": "10"}'
    )
    run = shell.run("%%interact --background -o later --chain bg\nA background task")
    result = shell.ip.run_line_magic("interact", "wait")
    assert result.id == run.id and result.status == "completed"
    assert shell.ip.user_ns["later"].text == result.text
    assert shell.magics.chains.turns("bg")[-1].interaction_id == run.id


def test_image_and_schema_results_show_every_part(shell: Shell) -> None:
    shell.ip.user_ns["spec"] = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
    result = shell.run("%%interact --image --schema spec\nBob is 31.")
    bundle, _ = result._repr_mimebundle_()
    # a frontend shows the richest type alone: JSON would hide the image, so Markdown holds both
    assert "application/json" not in bundle
    markdown = bundle["text/markdown"]
    assert '"name": "Bob"' in markdown and "![generated image 1](data:image/jpeg;base64," in markdown
    assert result.data == {"name": "Bob", "age": 31} and len(result.images) == 1


def test_a_trailing_semicolon_on_the_line_binds_and_shows_nothing(shell: Shell, server) -> None:  # type: ignore[no-untyped-def]
    result = shell.ip.run_cell("%%interact -o quiet;\nHello there")
    assert result.success and result.result is None
    assert isinstance(shell.ip.user_ns["quiet"], InteractionResult) and shell.ip.user_ns["quiet"].text.endswith("Hello there")
    shell.ip.user_ns["five"] = 5
    sent = shell.ip.run_cell('%%interact -s "costs $five, {five + 1} or $5.50"\nHi')  # as IPython expands, but $5 stays
    assert sent.success and requests_to(server, "/interactions")[-1]["json"]["system_instruction"] == "costs 5, 6 or $5.50"
