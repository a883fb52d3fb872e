"""Where a Save button writes: a folder the user sets (``InteractMagics.save_dir``) and a name a person can
read, taken from the prompt (``a-watercolour-lighthouse-at-dawn.png``), never overwriting an earlier file."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["readable_stem", "free_path", "image_extension"]

_WORD = re.compile(r"[a-z0-9]+")


def readable_stem(prompt: str, words: int = 6, fallback: str = "gemini") -> str:
    """The prompt's first words, lower case, joined by hyphens (``{{references}}`` left out)."""
    text = re.sub(r"\{\{.*?\}\}", " ", prompt.lower())
    found = _WORD.findall(text)[:words]
    return "-".join(found)[:60].strip("-") or fallback


def image_extension(mime_type: str | None) -> str:
    """The file extension for an image's MIME type (``jpg`` for JPEG)."""
    return (mime_type or "image/png").split("/")[-1].replace("jpeg", "jpg")


def free_path(folder: str | Path, stem: str, extension: str) -> Path:
    """``folder/stem.extension``, or ``stem-2``, ``stem-3``… when taken; the folder is made if missing."""
    directory = Path(folder).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    candidate, n = directory / f"{stem}.{extension}", 1
    while candidate.exists():
        n += 1
        candidate = directory / f"{stem}-{n}.{extension}"
    return candidate
