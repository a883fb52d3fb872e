"""What an engine sees of a request, and the protocol it implements."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..policy import Policy

if TYPE_CHECKING:
    from ..store import Record, StoredFile


@dataclass
class EngineRequest:
    model: str
    history: list[dict[str, Any]]
    """The whole chain as steps: earlier turns (via previous_interaction_id or sent inline) and this input."""
    system_instruction: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    generation_config: dict[str, Any] = field(default_factory=dict)
    response_format: Any = None
    response_modalities: list[str] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)
    resolve_file: Callable[[str], StoredFile | None] = lambda uri: None
    search_files: Callable[[list[str], str, int], list[Any]] = lambda stores, query, top_k: []
    """The server's file search stores (``file_search``): the best passages for a query."""
    agent_config: dict[str, Any] = field(default_factory=dict)
    """For an agent (``agent`` instead of ``model``): its configuration; ``is_agent`` says which."""
    is_agent: bool = False
    mcp_hosts: frozenset[str] = frozenset()
    policy: Policy = field(default_factory=Policy)
    """What the stand-ins may do on this machine (run code, fetch which hosts)."""
    continuation: tuple[str, int] | None = None
    """A hop continuing an answer handed back in hops: the text still to come, and the hops after this one."""

    @property
    def last_user_text(self) -> str:
        for step in reversed(self.history):
            if step.get("type") == "user_input":
                return " ".join(b.get("text", "") for b in step.get("content", []) if b.get("type") == "text")
        return ""

    @property
    def plain_text(self) -> bool:
        """Text in, text (or JSON) out: no tools, no agent, no attachments, no media asked for."""
        if self.tools or self.is_agent or self.response_modalities or self.generation_config.get("transcription_config"):
            return False
        if any(f.get("type") in ("image", "audio", "video") for f in self._formats()):
            return False
        return all(b.get("type") == "text" for s in self.history for b in s.get("content", []) if isinstance(b, dict))

    def json_schema(self) -> dict[str, Any] | None:
        """The JSON schema asked for, in either generation's ``response_format`` shape."""
        fmt = self.response_format
        formats = fmt if isinstance(fmt, list) else [fmt]
        for item in formats:
            if not isinstance(item, dict):
                continue
            schema = item.get("schema")
            if item.get("type") == "text" and isinstance(schema, dict):
                return schema
            if item.get("type") in ("image", "audio", "video", "text"):
                continue
            return item  # a raw JSON schema (legacy form)
        return None

    def _formats(self) -> list[dict[str, Any]]:
        """The ``response_format`` entries (it comes as one or as a list)."""
        fmt = self.response_format
        return [f for f in (fmt if isinstance(fmt, list) else [fmt]) if isinstance(f, dict)]

    def output_format(self, kind: str) -> dict[str, Any] | None:
        """The ``response_format`` entry for ``kind`` (image, audio, video), or a bare one when the older
        ``response_modalities`` asks for it; None when not asked for."""
        found = next((f for f in self._formats() if f.get("type") == kind), None)
        if found is None and kind in [m.lower() for m in self.response_modalities]:
            return {"type": kind}
        return found

    def wants_image(self) -> bool:
        return self.output_format("image") is not None

    def wants_audio(self) -> bool:
        return self.output_format("audio") is not None

    def first_image(self) -> bytes | None:
        """The first image of the last turn (a video's first frame, ``image_to_video``)."""
        for block in (b for s in self.history[-1:] for b in s.get("content", []) if b.get("type") == "image"):
            if block.get("data"):
                return base64.b64decode(block["data"])
            stored = self.resolve_file(block["uri"]) if block.get("uri") else None
            if stored is not None:
                return stored.data
        return None

    def speech_voices(self) -> dict[str, str]:
        """``generation_config.speech_config`` as speaker → voice (``""`` for the one unnamed speaker); it
        comes as a list of ``{speaker, voice}`` or as ``{"speakers": [...]}``."""
        config = self.generation_config.get("speech_config") or []
        entries = config.get("speakers") or [] if isinstance(config, dict) else config
        return {str(e.get("speaker") or ""): str(e.get("voice") or "") for e in entries if isinstance(e, dict)}

    def image_mime(self) -> str:
        """The image type to answer with: the image ``response_format``'s (JPEG, the one type the current
        API allows), or PNG for the older ``response_modalities`` requests."""
        for item in self._formats():
            if item.get("type") == "image":
                return str(item.get("mime_type") or "image/jpeg")
        return "image/png"

    def image_shape(self) -> tuple[str | None, str | None]:
        """(aspect ratio, image size) asked for: an image ``response_format``'s fields, or the older
        ``generation_config.image_config``."""
        for item in self._formats():
            if item.get("type") == "image" and (item.get("aspect_ratio") or item.get("image_size")):
                return item.get("aspect_ratio"), item.get("image_size")
        legacy = self.generation_config.get("image_config") or {}
        return legacy.get("aspect_ratio"), legacy.get("image_size")

    def describe_part(self, block: dict[str, Any]) -> str:
        """A part the model cannot see, as text; text documents as their text."""
        kind = block.get("type", "?")
        mime = block.get("mime_type") or "application/octet-stream"
        data: bytes | None = None
        if block.get("data"):
            data = base64.b64decode(block["data"])
        elif block.get("uri"):
            stored = self.resolve_file(block["uri"])
            if stored is not None:
                data, mime = stored.data, stored.mime_type
        if data is not None and (mime.startswith("text/") or mime in ("application/json", "text/csv")):
            return data.decode("utf-8", "replace")
        size = f", {len(data)} bytes" if data is not None else ""
        if kind in ("video", "audio") and data is not None:
            from ..media_info import duration_seconds

            seconds = duration_seconds(data, mime)
            size = (f", {seconds:.1f} s" if seconds is not None else ", duration unknown") + size
        where = f" at {block['uri']}" if data is None and block.get("uri") else ""
        return f"[{kind} attachment: {mime}{size}{where}]"


class Engine(Protocol):
    name: str
    served_by: str
    """What answered, as the interaction's ``served_by`` says (the requested model name is echoed)."""
    default_max_tokens: int
    """Output tokens at most when the request sets no ``max_output_tokens``."""

    @property
    def description(self) -> str: ...

    def quick(self, request: EngineRequest) -> bool:
        """Whether ``run`` answers ``request`` at once (no I/O, no waiting, a fraction of a millisecond):
        the server then runs it on its event loop when nobody watches it, not on a worker thread."""
        ...

    def run(self, request: EngineRequest, record: Record) -> str:
        """Write the answer's steps into ``record``; return the final status.

        ``completed``, ``requires_action``, or ``incomplete`` when the output-token limit cut the answer
        (then ``record.incomplete_details`` says so).
        """
        ...
