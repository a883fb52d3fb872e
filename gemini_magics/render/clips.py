"""Spoken answers (``--audio``) as objects a notebook can play, measure and save."""

from __future__ import annotations

import base64
import html
import io
import wave
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AudioClip", "VideoClip", "EMBED_AUDIO_BYTES"]

EMBED_AUDIO_BYTES = 2_000_000
"""Audio up to this size is embedded in the saved notebook; longer clips are written beside it instead."""


@dataclass(frozen=True)
class AudioClip:
    """One audio answer: ``data`` (bytes), ``mime_type``, ``duration`` (seconds); ``.save()`` writes it,
    and in a notebook it shows as a player."""

    data: bytes
    mime_type: str = "audio/wav"
    sample_rate: int | None = None
    channels: int | None = None
    note: str = ""
    """What made it, when the local server spoke it (a synthesizer on this machine, or a synthetic signal)."""

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
        subtype = self.mime_type.split("/")[-1].split(";")[0]
        return {"mpeg": "mp3", "l16": "pcm", "ogg_opus": "ogg", "x-wav": "wav", "wave": "wav"}.get(subtype, subtype)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the audio (``path`` default: ``speech.wav`` in the working directory, never overwriting)."""
        from .saving import free_path

        target = Path(path) if path is not None else free_path(".", "speech", self.extension)
        target.write_bytes(self.data)
        return target

    def caption(self) -> str:
        seconds = self.duration
        bits = [f"{seconds:.1f} s" if seconds is not None else "audio", self.mime_type]
        return " · ".join(bits + ([self.note] if self.note else []))

    def player_html(self, src: str | None = None) -> str:
        source = src or f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode()}"
        return f'<audio controls preload="metadata" src="{html.escape(source, quote=True)}"></audio>'

    def _repr_html_(self) -> str:
        return f"{self.player_html()}<br><sub>{html.escape(self.caption())}</sub>"

    def __repr__(self) -> str:
        return f"AudioClip({self.caption()}, {len(self.data):,} bytes)"


@dataclass(frozen=True)
class VideoClip:
    """One generated video: ``data`` (bytes), ``mime_type``; ``duration`` and ``poster()`` (its first frame,
    a JPEG) where PyAV is installed; ``.save()`` writes it; in a notebook it shows as a player."""

    data: bytes
    mime_type: str = "video/mp4"
    note: str = ""

    @property
    def extension(self) -> str:
        return {"video/webm": "webm", "video/quicktime": "mov", "video/mov": "mov"}.get(self.mime_type, "mp4")

    @property
    def duration(self) -> float | None:
        try:
            import av

            with av.open(io.BytesIO(self.data)) as container:
                return container.duration / 1_000_000 if container.duration else None
        except Exception:  # no PyAV, or a container it cannot read: unknown
            return None

    def poster(self, long_side: int = 320) -> bytes | None:
        """The first frame as a small JPEG (what a saved notebook shows before the video plays)."""
        try:
            import av

            with av.open(io.BytesIO(self.data)) as container:
                image = next(container.decode(video=0)).to_image()
        except Exception:
            return None
        image.thumbnail((long_side, long_side))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=80)
        return buffer.getvalue()

    def save(self, path: str | Path | None = None) -> Path:
        from .saving import free_path

        target = Path(path) if path is not None else free_path(".", "video", self.extension)
        target.write_bytes(self.data)
        return target

    def caption(self) -> str:
        seconds = self.duration
        bits = [f"{seconds:.1f} s" if seconds is not None else "video", self.mime_type]
        return " · ".join(bits + ([self.note] if self.note else []))

    def player_html(self, src: str | None = None) -> str:
        source = src or f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode()}"
        poster = self.poster()
        still = f' poster="data:image/jpeg;base64,{base64.b64encode(poster).decode()}"' if poster else ""
        return f'<video controls preload="metadata"{still} src="{html.escape(source, quote=True)}"></video>'

    def _repr_html_(self) -> str:
        return f"{self.player_html()}<br><sub>{html.escape(self.caption())}</sub>"

    def __repr__(self) -> str:
        return f"VideoClip({self.caption()}, {len(self.data):,} bytes)"
