"""Spoken answers (``--audio``) and generated videos (``--video``) as objects a notebook can play, measure
and save."""

from __future__ import annotations

import base64
import html
import io
import wave
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

__all__ = ["AudioClip", "VideoClip", "EMBED_BYTES", "clip_of"]

EMBED_BYTES = 2_000_000
"""A clip up to this size is embedded in the saved notebook; a bigger one is written beside it instead."""


@dataclass(frozen=True)
class _Clip:
    """What a spoken answer and a video share: the bytes, their type, what made them (the local note when the
    local server did), a caption, a player and ``save()``."""

    data: bytes
    mime_type: str
    note: str = ""
    kind: ClassVar[str] = "clip"
    """The HTML element that plays it, and the word a caption falls back on."""

    @property
    def duration(self) -> float | None:
        return None

    @property
    def extension(self) -> str:
        return self.mime_type.split("/")[-1].split(";")[0]

    def save(self, path: str | Path | None = None) -> Path:
        """Write it (``path`` default: ``speech.wav`` / ``video.webm`` in the working directory, never overwriting)."""
        from .saving import free_path

        target = Path(path) if path is not None else free_path(".", "speech" if self.kind == "audio" else self.kind, self.extension)
        target.write_bytes(self.data)
        return target

    def caption(self) -> str:
        seconds = self.duration
        bits = [f"{seconds:.1f} s" if seconds is not None else self.kind, self.mime_type]
        return " · ".join(bits + ([self.note] if self.note else []))

    def player_html(self, src: str | None = None) -> str:
        source = src or f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode()}"
        return f'<{self.kind} controls preload="metadata"{self._still()} src="{html.escape(source, quote=True)}"></{self.kind}>'

    def _still(self) -> str:
        return ""

    def _repr_html_(self) -> str:
        return f"{self.player_html()}<br><sub>{html.escape(self.caption())}</sub>"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.caption()}, {len(self.data):,} bytes)"


@dataclass(frozen=True, repr=False)
class AudioClip(_Clip):
    """One audio answer: ``data`` (bytes), ``mime_type``, ``duration`` (seconds); ``.save()`` writes it,
    and in a notebook it shows as a player."""

    mime_type: str = "audio/wav"
    sample_rate: int | None = None
    channels: int | None = None
    kind: ClassVar[str] = "audio"

    @property
    def duration(self) -> float | None:
        if self.mime_type in ("audio/wav", "audio/x-wav", "audio/wave"):
            try:
                with wave.open(io.BytesIO(self.data)) as reader:
                    return float(reader.getnframes()) / float(reader.getframerate())
            except (wave.Error, EOFError):
                return None
        if self.mime_type.startswith("audio/l16") and self.sample_rate:  # raw 16-bit PCM
            return len(self.data) / (2.0 * self.sample_rate * (self.channels or 1))
        return None

    @property
    def extension(self) -> str:
        subtype = super().extension
        return {"mpeg": "mp3", "l16": "pcm", "ogg_opus": "ogg", "x-wav": "wav", "wave": "wav"}.get(subtype, subtype)


@dataclass(frozen=True, repr=False)
class VideoClip(_Clip):
    """One generated video: ``data`` (bytes), ``mime_type``; ``duration`` and ``poster()`` (its first frame,
    a JPEG) where PyAV is installed; ``.save()`` writes it; in a notebook it shows as a player."""

    mime_type: str = "video/mp4"
    kind: ClassVar[str] = "video"

    @property
    def extension(self) -> str:
        return {"video/webm": "webm", "video/quicktime": "mov", "video/mov": "mov"}.get(self.mime_type, "mp4")

    @cached_property
    def duration(self) -> float | None:
        try:
            import av

            with av.open(io.BytesIO(self.data)) as container:
                return container.duration / 1_000_000 if container.duration else None
        except Exception:  # no PyAV, or a container it cannot read: unknown
            return None

    @cached_property
    def _first_frame(self) -> Any:
        try:
            import av

            with av.open(io.BytesIO(self.data)) as container:
                return next(container.decode(video=0)).to_image()
        except Exception:
            return None

    def poster(self, long_side: int = 320) -> bytes | None:
        """The first frame as a small JPEG (what a saved notebook shows before the video plays)."""
        if self._first_frame is None:
            return None
        image = self._first_frame.copy()
        image.thumbnail((long_side, long_side))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=80)
        return buffer.getvalue()

    def _still(self) -> str:
        poster = self.poster()
        return f' poster="data:image/jpeg;base64,{base64.b64encode(poster).decode()}"' if poster else ""


def clip_of(kind: str, data: bytes, mime_type: str | None, note: str = "") -> AudioClip | VideoClip:
    """A clip of a view block's kind (``audio`` or ``video``)."""
    if kind == "video":
        return VideoClip(data, mime_type or "video/mp4", note)
    return AudioClip(data, mime_type or "audio/wav", note)
