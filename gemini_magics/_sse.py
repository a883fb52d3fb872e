"""SSE decoding (WHATWG framing) and typed dispatch of Interactions API events.

This decoder replaces httpx-sse on purpose: on a 20,000-delta stream its per-line objects were 40 %
of the client's time (see ``benchmarks/bench_stream.py``). It keeps the spec's rules that matter
here: lines end at CR, LF or CRLF only (not at the other characters ``str.splitlines`` breaks on,
which may appear raw inside JSON), a blank line dispatches, ``:`` lines are comments, one space after
the colon is dropped, ``data`` lines join with LF, a leading BOM is ignored, an unterminated event at
EOF is discarded. ``event``/``id``/``retry`` are not needed: events carry ``event_type`` and
``event_id`` in their JSON.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from ._exceptions import APIResponseValidationError
from .types._base import tag_map
from .types.events import EVENT_MODELS, InteractionEvent, TextContentDeltaEvent, TextStepDeltaEvent

DONE = "[DONE]"


@functools.cache
def _events() -> TypeAdapter[InteractionEvent]:
    """The open union of every event, built on first need (most streams never need it)."""
    return TypeAdapter(InteractionEvent)
_BY_TYPE = tag_map(EVENT_MODELS, "event_type")
_TEXT_DELTAS = {"step.delta": TextStepDeltaEvent, "content.delta": TextContentDeltaEvent}
_TYPE_KEY = '"event_type":"'


def iter_lines(chunks: Iterator[str]) -> Iterator[list[str]]:
    """Batches of lines of a text stream, split at CR, LF or CRLF (also a CRLF across two chunks)."""
    tail = ""
    skip_lf = False
    first = True
    for chunk in chunks:
        if not chunk:
            continue
        if first:
            chunk = chunk.removeprefix("\ufeff")
            first = False
        if skip_lf and chunk[0] == "\n":
            chunk = chunk[1:]
        skip_lf = chunk.endswith("\r")
        text = tail + chunk
        if "\r" in text:  # rare: normalise, then split like the common LF-only case
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        tail = lines.pop()
        yield lines
    if tail:
        yield [tail]


def iter_data(response: httpx.Response) -> Iterator[str]:
    """The ``data`` of each event frame, until ``[DONE]`` or the end of the body.

    A bare JSON error line in the stream (no ``data:``; the API has sent refusals that way, js-genai#1973)
    comes out as an ``error`` event's data, so the caller sees the error and its code, never a silent cut.
    """
    data: list[str] = []
    for lines in iter_lines(response.iter_text()):
        for line in lines:
            if line:
                if line.startswith("{"):
                    bare = _bare_error(line)
                    if bare is not None:
                        yield bare
                    continue
                # only data lines matter; event/id/retry and comments are ignored
                if line.startswith("data"):
                    if line.startswith("data: "):
                        data.append(line[6:])
                    elif line.startswith("data:"):
                        data.append(line[5:])
                    elif line == "data":
                        data.append("")
                continue
            if data:
                joined = data[0] if len(data) == 1 else "\n".join(data)
                data = []
                if joined == DONE:
                    return
                yield joined


def _bare_error(line: str) -> str | None:
    import json

    try:
        value = json.loads(line)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("error"), dict):
        return json.dumps({"event_type": "error", "error": value["error"]})
    return None


def _event_model(data: str) -> type[Any] | None:
    """The class for this event, read off the raw JSON without decoding it; None if unsure."""
    if data.startswith('{"event_type":"step.delta"') and '"type":"text"' in data:
        return TextStepDeltaEvent  # how servers (ours, Google's) lay out the commonest event
    start = data.find(_TYPE_KEY)
    if start < 0:
        return None
    start += len(_TYPE_KEY)
    kind = data[start : data.find('"', start)]
    if '"type":"text"' in data and kind in _TEXT_DELTAS:
        return _TEXT_DELTAS[kind]
    return _BY_TYPE.get(kind)


def parse_event(data: str) -> InteractionEvent:
    """One event's JSON as its typed model.

    Validating through the open union makes pydantic hand each event to a Python discriminator;
    validating against the class named by ``event_type`` stays in Rust (a third of the cost on a
    long stream). A wrong guess cannot pass, since each class pins its ``event_type`` literal, and
    anything unusual falls back to the union, which also keeps unknown variants.
    """
    model = _event_model(data)
    if model is not None:
        try:
            event: InteractionEvent = model.model_validate_json(data)
            return event
        except ValidationError:
            pass
    try:
        return _events().validate_json(data)
    except ValidationError as exc:
        raise APIResponseValidationError(
            f"unreadable stream event: {exc.errors()[0]['msg']}: {data[:200]}"
        ) from exc
