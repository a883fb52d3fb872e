"""The request builder on its own: options + prompt + namespace in, a checked request and body out.

No shell and no server: the option matrix is tested directly through the magic's own parser.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from gemini_magics._constants import DEFAULT_MODEL
from gemini_magics.chains import Plan
from gemini_magics.errors import OptionError, TemplateError
from gemini_magics.magics import InteractMagics
from gemini_magics.request import CellRequest, Settings, build_request, split_line


def parse_argstring(magic: Any, line: str) -> Any:
    """The magic's own parser, on the line split as the magic splits it."""
    return magic.parser.parse_args(split_line(line))


planned: list[tuple[str, bool, bool]] = []


def planner(chain: str, new: bool, stateless: bool) -> Plan:
    planned.append((chain, new, stateless))
    return Plan(chain, 0, None, [], False)


def build(line: str, cell: str = "Hello", namespace: dict[str, Any] | None = None, **settings: Any) -> CellRequest:
    args = parse_argstring(InteractMagics.interact, line)
    return build_request(args, cell, namespace or {}, Settings(**settings), planner)


def test_a_plain_cell_is_a_model_and_a_string_input() -> None:
    request = build("")
    assert request.body() == {"model": DEFAULT_MODEL, "input": "Hello"}
    assert (request.chain, request.store, request.stream, request.silent) == ("default", True, True, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.model = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-m gemini-2.5-pro", {"model": "gemini-2.5-pro"}),
        ("--agent deep-research-pro-preview-12-2025", {"agent": "deep-research-pro-preview-12-2025"}),
        ("-s 'Be terse.'", {"system_instruction": "Be terse."}),
        ("--temperature 0.2 --max-tokens 50 --seed 7", {"generation_config": {"temperature": 0.2, "max_output_tokens": 50, "seed": 7}}),
        ("--thinking low", {"generation_config": {"thinking_level": "low", "thinking_summaries": "auto"}}),
        ("--no-store", {"store": False}),
        ("--background", {"background": True}),
        ("--image", {"model": "gemini-3-pro-image-preview",
                     "response_format": [{"type": "image", "mime_type": "image/jpeg"}, {"type": "text"}]}),
    ],
)  # fmt: skip
def test_options_become_request_fields(line: str, expected: dict[str, Any]) -> None:
    body = build(line).body()
    for key, value in expected.items():
        assert body[key] == value, (key, body)


def test_settings_fill_in_what_the_line_does_not_say() -> None:
    request = build("--no-stream", model="m-default", system="Be kind.", headers={"X-Trace": "1"})
    assert request.body() == {"model": "m-default", "system_instruction": "Be kind.", "input": "Hello"}
    assert request.stream is False and dict(request.headers) == {"X-Trace": "1"}
    assert build("-s ''", system="Be kind.").body().get("system_instruction") is None
    assert build('-s "Answer in French."').body()["system_instruction"] == "Answer in French."


def test_schema_and_image_together_ask_for_json_text_and_an_image() -> None:
    spec = {"type": "object", "properties": {"a": {"type": "string"}}}
    request = build("--schema spec --image", namespace={"spec": spec})
    assert request.schema is not None and request.schema.name == "spec"
    assert request.body()["response_format"] == [
        {"type": "text", "mime_type": "application/json", "schema": spec},
        {"type": "image", "mime_type": "image/jpeg"},
    ]


def test_a_pydantic_schema_sends_its_json_schema() -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str

    request = build("--schema City", namespace={"City": City})
    assert request.body()["response_format"]["schema"]["required"] == ["name"]


def test_the_plan_decides_previous_id_and_history() -> None:
    planned.clear()
    args = parse_argstring(InteractMagics.interact, "--chain travel --new --no-store")
    history = [{"type": "user_input", "content": [{"type": "text", "text": "before"}]}]
    request = build_request(args, "Now", {}, Settings(), lambda c, n, s: Plan(c, 1, None, history, False))
    assert request.body()["input"] == history + [{"type": "user_input", "content": [{"type": "text", "text": "Now"}]}]
    build("--chain travel --new --no-store")
    assert planned == [("travel", True, True)]
    stored = build_request(parse_argstring(InteractMagics.interact, ""), "Next", {}, Settings(),
                           lambda c, n, s: Plan(c, 1, "v1_prev", [], False))  # fmt: skip
    assert stored.body() == {"model": DEFAULT_MODEL, "input": "Next", "previous_interaction_id": "v1_prev"}


def test_references_become_parts_and_a_trailing_semicolon_silences() -> None:
    request = build("", "Count {{items}} for {{name}};", namespace={"items": [1, 2], "name": "Ada"})
    assert request.silent and request.body()["input"] == "Count [1, 2] for Ada"
    assert build("--dry-run").dry_run


@pytest.mark.parametrize(
    ("line", "cell", "namespace", "expected"),
    [
        ("-o 1bad", "hi", {}, "-o needs a Python identifier"),
        ("--chain 'bad name!'", "hi", {}, "--chain needs a simple name"),
        ("--agent a -m b", "hi", {}, "not both"),
        ("--agent a --seed 1", "hi", {}, "apply to models, not to --agent"),
        ("--agent a --thinking low", "hi", {}, "apply to models, not to --agent"),
        ("--background --no-store", "hi", {}, "drop --no-store"),
        ("--max-tokens -5", "hi", {}, "positive"),
        ("--temperature 2.5", "hi", {}, "between 0 and 2"),
        ("", "  ;  ", {}, "the cell is empty"),
        ("--schema Nope", "hi", {}, "--schema Nope: no such variable"),
        ("--schema n", "hi", {"n": 3}, "expected a pydantic model class or a JSON-schema dict, got int"),
        ("--schema bad", "hi", {"bad": {"type": "objekt"}}, "--schema bad is not a valid JSON Schema"),
        ("", "{{ghost}}", {}, "unknown name in {{...}}: ghost"),
        ("-s 'unclosed", "hi", {}, "cannot parse the %%interact line"),
    ],
)
def test_every_bad_option_is_one_line(line: str, cell: str, namespace: dict[str, Any], expected: str) -> None:
    planned.clear()
    with pytest.raises(OptionError) as caught:
        build(line, cell, namespace)  # split_line's error too: it is the first step of building
    assert expected in str(caught.value) and "\n" not in str(caught.value)
    assert planned == []  # nothing was planned for a refused cell


def test_template_errors_are_option_errors() -> None:
    with pytest.raises(TemplateError, match="has no attribute 'nope'"):
        build("", "{{d.nope}}", {"d": {}})
