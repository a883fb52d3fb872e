"""A pure fold of stream events into an Interaction snapshot (no I/O).

``InteractionAccumulator.add`` is O(1) per delta (text is kept as chunk lists and joined only when a
snapshot is taken), so a renderer may snapshot at a bounded rate while 20,000 deltas go by. The
snapshot equals what the same interaction returns when not streamed: that equivalence is tested.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .types import content as c
from .types import events as e
from .types.interaction import Interaction

_MEDIA_DELTAS = (c.ImageContent, c.AudioContent, c.DocumentContent, c.VideoContent)
_JOINABLE = ("text", "data")


class _Part:
    """One content block under construction: string fields are kept as chunk lists."""

    __slots__ = ("fields", "chunks")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.chunks: dict[str, list[str]] = {}
        self.fields = {}
        for key, value in fields.items():
            if key in _JOINABLE and isinstance(value, str):
                self.chunks[key] = [value] if value else []
            else:
                self.fields[key] = value
        if fields.get("type") == "text":
            self.chunks.setdefault("text", [])

    def build(self) -> dict[str, Any]:
        out = dict(self.fields)
        for key, chunks in self.chunks.items():
            out[key] = "".join(chunks)
        return out


class _Block:
    """A step (steps schema) or an output content block (legacy) under construction."""

    __slots__ = ("fields", "parts", "summary", "arguments")

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields
        self.parts: list[_Part] = []
        self.summary: list[_Part] = []
        self.arguments: list[str] = []

    @property
    def type(self) -> str:
        return str(self.fields.get("type", ""))

    def add_part(self, target: list[_Part], delta: dict[str, Any]) -> None:
        last = target[-1] if target else None
        if last is not None and last.fields.get("type") == delta.get("type") and "uri" not in delta:
            for key in _JOINABLE:
                if key in delta and isinstance(delta[key], str):
                    last.chunks.setdefault(key, []).append(delta[key])
            for key, value in delta.items():
                if key not in _JOINABLE and value is not None:
                    last.fields[key] = value
        else:
            target.append(_Part(delta))

    def build_step(self) -> dict[str, Any]:
        out = dict(self.fields)
        kind = self.type
        if kind in ("model_output", "user_input"):
            out["content"] = list(out.get("content") or []) + [p.build() for p in self.parts]
        elif kind == "thought" and self.summary:
            out["summary"] = list(out.get("summary") or []) + [p.build() for p in self.summary]
        if self.arguments:
            joined = "".join(self.arguments)
            try:
                out["arguments"] = json.loads(joined)
            except ValueError:
                # still streaming (or cut): the object so far, and the text itself, so nothing is lost
                from pydantic_core import from_json

                try:
                    partial = from_json(joined, allow_partial="trailing-strings")
                except ValueError:
                    partial = None
                out["arguments"] = partial if isinstance(partial, dict) else {}
                out["arguments_text"] = joined
        return out

    def build_contents(self) -> list[dict[str, Any]]:
        """Legacy: a content block is itself the part for text and media."""
        if self.type in ("text", "image", "audio", "document", "video"):
            head = _Part(self.fields)
            for part in self.parts:
                for key, chunks in part.chunks.items():
                    head.chunks.setdefault(key, []).extend(chunks)
                head.fields.update({k: v for k, v in part.fields.items() if k != "type"})
            return [head.build()]
        return [self.build_step()]


class InteractionAccumulator:
    """Feed events with :meth:`add`; read the Interaction so far with :meth:`snapshot`."""

    def __init__(self) -> None:
        self._interaction: dict[str, Any] = {}
        self._blocks: dict[int, _Block] = {}
        self._legacy = False
        self.last_event_id: str | None = None
        self.event_count = 0
        self.finished = False
        # the chunk list text deltas of block ``_text_index`` append to, while nothing else intervenes
        self._text_index: int | None = None
        self._text_chunks: list[str] = []

    @property
    def interaction_id(self) -> str | None:
        value = self._interaction.get("id")
        return str(value) if value else None

    def add(self, event: e.InteractionEvent) -> None:
        self.event_count += 1
        if event.event_id:
            self.last_event_id = event.event_id
        if (
            type(event) is e.TextStepDeltaEvent
            and event.index == self._text_index
            and not event.delta.annotations
        ):
            self._text_chunks.append(event.delta.text)
            return
        self._text_index = None
        if isinstance(event, e.StepDeltaEvent | e.ContentDeltaEvent):
            self._add_delta(event.index, event.delta)
        elif isinstance(event, e.StepStartEvent):
            self._blocks[event.index] = _Block(event.step.to_dict())
        elif isinstance(event, e.ContentStartEvent):
            self._legacy = True
            self._blocks[event.index] = _Block(event.content.to_dict())
        elif isinstance(event, e.InteractionCreatedEvent | e.InteractionStartEvent):
            self._legacy = self._legacy or isinstance(event, e.InteractionStartEvent)
            self._merge_interaction(event.interaction)
        elif isinstance(event, e.InteractionCompletedEvent | e.InteractionCompleteEvent):
            self._legacy = self._legacy or isinstance(event, e.InteractionCompleteEvent)
            self._merge_interaction(event.interaction)
            self.finished = True
        elif isinstance(event, e.InteractionStatusUpdateEvent):
            if event.status:
                self._interaction["status"] = event.status
            if event.usage is not None:
                self._interaction["usage"] = event.usage.to_dict()
            if event.continuation_token:
                self._interaction["continuation_token"] = event.continuation_token
        elif isinstance(event, e.ErrorEvent):
            self._interaction.setdefault("errors", []).append(event.error.to_dict())
            self._interaction["status"] = "failed"

    def _merge_interaction(self, interaction: Interaction) -> None:
        data = interaction.to_dict()
        # the completed event's steps/outputs are empty or partial by design; ours come from deltas
        for key in ("steps", "outputs"):
            if not data.get(key) or self._blocks:
                data.pop(key, None)
        self._interaction.update(data)

    def _add_delta(self, index: int, delta: c.Delta) -> None:
        block = self._blocks.get(index)
        if block is None:  # a delta without its start event: open the block it implies
            block = self._blocks[index] = _Block(self._implied_block(delta))
        if isinstance(delta, c.TextContent):
            last = block.parts[-1] if block.parts else None
            if last is not None and last.fields.get("type") == "text" and not delta.annotations:
                last.chunks["text"].append(delta.text)
            else:
                block.add_part(block.parts, delta.to_dict())
                last = block.parts[-1]
            if not self._legacy and last.fields.get("type") == "text":
                self._text_index, self._text_chunks = index, last.chunks["text"]
        elif isinstance(delta, c.ArgumentsDelta):
            block.arguments.append(delta.arguments)
        elif isinstance(delta, c.ThoughtSummaryDelta):
            if delta.content is not None:
                block.add_part(block.summary, delta.content.to_dict())
        elif isinstance(delta, c.ThoughtSignatureDelta):
            block.fields["signature"] = delta.signature
        elif isinstance(delta, _MEDIA_DELTAS):
            block.add_part(block.parts, delta.to_dict())
        elif isinstance(delta, c.TextAnnotationDelta):
            target = block.parts[-1] if block.parts else None
            if target is not None:
                target.fields.setdefault("annotations", []).extend(delta.annotations)
        else:
            # tool payloads (legacy function_call, code execution, search...) arrive whole: merge them
            fields = delta.to_dict()
            fields.pop("type", None)
            block.fields.update(fields)

    def _implied_block(self, delta: c.Delta) -> dict[str, Any]:
        kind = str(getattr(delta, "type", ""))
        if self._legacy:
            if kind in ("thought_summary", "thought_signature"):
                return {"type": "thought"}
            return {"type": kind}
        if kind in ("text", "image", "audio", "document", "video", "text_annotation_delta"):
            return {"type": "model_output"}
        if kind in ("thought_summary", "thought_signature"):
            return {"type": "thought"}
        if kind == "arguments_delta":
            return {"type": "function_call"}
        return {"type": kind}

    def snapshot(self) -> Interaction:
        data = dict(self._interaction)
        ordered = [self._blocks[i] for i in sorted(self._blocks)]
        if self._legacy:
            if ordered or "outputs" not in data:
                data["outputs"] = [part for block in ordered for part in block.build_contents()]
        elif ordered or "steps" not in data:
            data["steps"] = [block.build_step() for block in ordered]
        return Interaction.model_validate(data)


def accumulate(events: Iterable[e.InteractionEvent]) -> Interaction:
    """Fold a whole event sequence into the Interaction it describes."""
    acc = InteractionAccumulator()
    for event in events:
        acc.add(event)
    return acc.snapshot()
