"""SSE framing over httpx-sse, plus the Interactions API's ``[DONE]`` sentinel and typed dispatch."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
from httpx_sse import EventSource
from pydantic import TypeAdapter, ValidationError

from ._exceptions import APIResponseValidationError
from .types.events import InteractionEvent

DONE = "[DONE]"
_EVENTS: TypeAdapter[InteractionEvent] = TypeAdapter(InteractionEvent)


def iter_data(response: httpx.Response) -> Iterator[str]:
    """The ``data`` of each event frame (WHATWG framing: comments skipped, multi-line data joined)."""
    for sse in EventSource(response).iter_sse():
        data = sse.data
        if not data:
            continue
        if data == DONE:
            return
        yield data


def parse_event(data: str) -> InteractionEvent:
    try:
        return _EVENTS.validate_json(data)
    except ValidationError as exc:
        raise APIResponseValidationError(
            f"unreadable stream event: {exc.errors()[0]['msg']}: {data[:200]}"
        ) from exc
