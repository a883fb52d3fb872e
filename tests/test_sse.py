"""SSE decoding edge cases (WHATWG framing) and typed dispatch, over an httpx MockTransport."""

from __future__ import annotations

import httpx
import pytest

from gemini_magics import Client
from gemini_magics._exceptions import APIResponseValidationError, StreamError
from gemini_magics.types import StepDeltaEvent, TextContent, UnknownEvent

CREATED = '{"event_type":"interaction.created","interaction":{"id":"v1_s","status":"in_progress"},"event_id":"v1_s:1"}'
DELTA = '{"event_type":"step.delta","index":0,"delta":{"type":"text","text":"%s"},"event_id":"v1_s:%d"}'
DONE_EVENT = '{"event_type":"interaction.completed","interaction":{"id":"v1_s","status":"completed"},"event_id":"v1_s:9"}'


def stream_of(raw: bytes) -> list:
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)
    )
    client = Client(api_key="k", http_client=httpx.Client(transport=transport))
    with client.interactions.create(model="m", input="x", stream=True) as stream:
        return list(stream)


def texts(events: list) -> str:
    return "".join(
        e.delta.text for e in events if isinstance(e, StepDeltaEvent) and isinstance(e.delta, TextContent)
    )


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_ending_variants(newline: bytes) -> None:
    frames = [
        f"event: interaction.created\ndata: {CREATED}",
        "data: " + DELTA % ("a", 2),
        "data: " + DELTA % ("b", 3),
        f"data: {DONE_EVENT}",
    ]
    raw = b"".join(f.encode().replace(b"\n", newline) + newline + newline for f in frames)
    events = stream_of(raw)
    assert texts(events) == "ab" and events[-1].event_type == "interaction.completed"


def test_comments_keepalives_and_frames_without_data_are_skipped() -> None:
    raw = (
        f": keep-alive\n\nevent: ping\n\nid: 5\n\ndata: {CREATED}\n\n: comment\ndata: "
        + DELTA % ("z", 2)
        + f"\n\ndata: {DONE_EVENT}\n\n"
    ).encode()
    assert texts(stream_of(raw)) == "z"


def test_multi_line_data_is_joined_with_newlines() -> None:
    raw = (
        'data: {"event_type":"step.delta","index":0,\ndata: "delta":{"type":"text","text":"x"},"event_id":"v1_s:2"}\n\n'
        + f"data: {DONE_EVENT}\n\n"
    ).encode()
    assert texts(stream_of(raw)) == "x"


def test_done_sentinel_ends_the_stream() -> None:
    raw = (
        f"data: {CREATED}\n\ndata: "
        + DELTA % ("a", 2)
        + "\n\ndata: [DONE]\n\ndata: "
        + DELTA % ("never", 3)
        + "\n\n"
    ).encode()
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=raw)
    )
    client = Client(api_key="k", http_client=httpx.Client(transport=transport))
    stream = client.interactions.create(model="m", input="x", stream=True, store=False)
    assert texts(list(stream)) == "a"


def test_unknown_event_types_are_kept_not_dropped() -> None:
    raw = f'data: {CREATED}\n\ndata: {{"event_type":"step.future","index":0,"x":1}}\n\ndata: {DONE_EVENT}\n\n'.encode()
    events = stream_of(raw)
    unknown = [e for e in events if isinstance(e, UnknownEvent)]
    assert (
        unknown and unknown[0].event_type == "step.future" and unknown[0].model_extra == {"index": 0, "x": 1}
    )


def test_non_json_data_is_a_typed_error() -> None:
    with pytest.raises(APIResponseValidationError, match="unreadable stream event"):
        stream_of(f"data: {CREATED}\n\ndata: not json\n\n".encode())


def test_error_event_raises_stream_error_with_code_and_message() -> None:
    raw = f'data: {CREATED}\n\ndata: {{"event_type":"error","error":{{"code":"internal","message":"boom"}},"event_id":"v1_s:2"}}\n\n'.encode()
    with pytest.raises(StreamError) as info:
        stream_of(raw)
    assert info.value.code == "internal" and info.value.server_message == "boom"


def test_duplicate_event_ids_are_dropped() -> None:
    raw = (
        f"data: {CREATED}\n\ndata: "
        + DELTA % ("a", 2)
        + "\n\ndata: "
        + DELTA % ("a", 2)
        + f"\n\ndata: {DONE_EVENT}\n\n"
    ).encode()
    assert texts(stream_of(raw)) == "a"
