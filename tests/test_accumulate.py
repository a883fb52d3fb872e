"""The accumulator: pure, both generations, and streamed == non-streamed against the local server."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from gemini_magics import Client
from gemini_magics._accumulate import InteractionAccumulator, accumulate
from gemini_magics.types import FunctionCall, InteractionEvent

EVENTS: TypeAdapter[InteractionEvent] = TypeAdapter(InteractionEvent)


def events(*raw: dict[str, Any]) -> list[InteractionEvent]:
    return [EVENTS.validate_python(r) for r in raw]


def test_steps_thought_then_function_call_with_argument_fragments() -> None:
    interaction = accumulate(events(
        {"event_type": "interaction.created", "interaction": {"id": "v1_a", "status": "in_progress"}},
        {"event_type": "step.start", "index": 0, "step": {"type": "thought"}},
        {"event_type": "step.delta", "index": 0, "delta": {"type": "thought_summary", "content": {"type": "text", "text": "Let me "}}},
        {"event_type": "step.delta", "index": 0, "delta": {"type": "thought_summary", "content": {"type": "text", "text": "check."}}},
        {"event_type": "step.delta", "index": 0, "delta": {"type": "thought_signature", "signature": "c2ln"}},
        {"event_type": "step.stop", "index": 0},
        {"event_type": "step.start", "index": 1, "step": {"type": "function_call", "id": "call_1", "name": "get_weather", "arguments": {}}},
        {"event_type": "step.delta", "index": 1, "delta": {"type": "arguments_delta", "arguments": '{"city":'}},
        {"event_type": "step.delta", "index": 1, "delta": {"type": "arguments_delta", "arguments": '"Paris"}'}},
        {"event_type": "step.stop", "index": 1},
        {"event_type": "interaction.completed", "interaction": {"id": "v1_a", "status": "requires_action"}},
    ))  # fmt: skip
    assert interaction.status == "requires_action"
    thought = interaction.thoughts[0]
    assert thought.text == "Let me check." and thought.signature == "c2ln"
    assert interaction.function_calls == [
        FunctionCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    ]


def test_legacy_function_call_delta_and_image_chunks() -> None:
    interaction = accumulate(events(
        {"event_type": "interaction.start", "interaction": {"id": "v1_l", "status": "in_progress"}},
        {"event_type": "content.start", "index": 0, "content": {"type": "image"}},
        {"event_type": "content.delta", "index": 0, "delta": {"type": "image", "mime_type": "image/png", "data": "iVBO"}},
        {"event_type": "content.delta", "index": 0, "delta": {"type": "image", "data": "Rw=="}},
        {"event_type": "content.stop", "index": 0},
        {"event_type": "content.start", "index": 1, "content": {"type": "function_call"}},
        {"event_type": "content.delta", "index": 1, "delta": {"type": "function_call", "id": "c", "name": "f", "arguments": {"a": 1}}},
        {"event_type": "content.stop", "index": 1},
        {"event_type": "interaction.complete", "interaction": {"id": "v1_l", "status": "requires_action", "outputs": []}},
    ))  # fmt: skip
    assert interaction.schema_generation == "legacy"
    assert interaction.images[0].data == "iVBORw==" and interaction.images[0].mime_type == "image/png"
    assert interaction.function_calls[0].arguments == {"a": 1}


def test_snapshots_grow_and_status_updates_apply() -> None:
    acc = InteractionAccumulator()
    acc.add(
        EVENTS.validate_python(
            {"event_type": "interaction.created", "interaction": {"id": "x", "status": "in_progress"}}
        )
    )
    acc.add(
        EVENTS.validate_python(
            {"event_type": "step.delta", "index": 0, "delta": {"type": "text", "text": "a"}}
        )
    )
    assert acc.snapshot().text == "a"
    acc.add(
        EVENTS.validate_python(
            {"event_type": "step.delta", "index": 0, "delta": {"type": "text", "text": "b"}}
        )
    )
    acc.add(
        EVENTS.validate_python(
            {"event_type": "interaction.status_update", "interaction_id": "x", "status": "incomplete"}
        )
    )
    snapshot = acc.snapshot()
    assert snapshot.text == "ab" and snapshot.status == "incomplete" and not acc.finished


TOOLS = [{"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}},
         {"type": "code_execution"}, {"type": "google_search"}, {"type": "url_context"}]  # fmt: skip
REQUESTS: dict[str, dict[str, Any]] = {
    "text": {"input": "Please write a table and a list"},
    "thinking": {"input": "Think first", "generation_config": {"thinking_level": "high", "thinking_summaries": "auto"}},
    "function": {"input": "use lookup please", "tools": TOOLS[:1]},
    "builtin_tools": {"input": "search https://example.org", "tools": TOOLS[1:]},
    "image": {"input": "a red fox", "response_format": [{"type": "image", "mime_type": "image/jpeg"}, {"type": "text"}]},
    "schema": {"input": "Ada Lovelace, 1815", "response_format": {"type": "text", "mime_type": "application/json",
               "schema": {"type": "object", "properties": {"name": {"type": "string"}, "born": {"type": "integer"}}}}},
}  # fmt: skip


def comparable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in ("id", "created", "updated")}


@pytest.mark.parametrize("kind", sorted(REQUESTS))
def test_streamed_equals_non_streamed(client: Client, kind: str) -> None:
    params = {"model": "gemini-3-flash-preview", **REQUESTS[kind]}
    unary = client.interactions.create(**params)
    with client.interactions.create(stream=True, **params) as stream:
        streamed = stream.until_done()
    assert streamed.status == unary.status
    assert streamed.outputs == unary.outputs and streamed.steps == unary.steps
    assert streamed.usage == unary.usage
    assert unary.outputs, kind


def test_a_snapshot_mid_function_call_is_valid_and_keeps_the_fragment() -> None:
    # a live view snapshots while arguments still stream: the object so far, never a validation error
    accumulator = InteractionAccumulator()
    for event in events(
        {"event_type": "interaction.created", "interaction": {"id": "v1_b", "status": "in_progress"}},
        {"event_type": "step.start", "index": 0, "step": {"type": "function_call", "id": "c1", "name": "f", "arguments": {}}},
        {"event_type": "step.delta", "index": 0, "delta": {"type": "arguments_delta", "arguments": '{"city": "Par'}},
    ):  # fmt: skip
        accumulator.add(event)
    (call,) = accumulator.snapshot().function_calls
    assert call.arguments == {"city": "Par"} and call.arguments_text == '{"city": "Par'
