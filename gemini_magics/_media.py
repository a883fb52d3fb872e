"""Media the API takes: MIME types in the API's own names, and remote or uploaded files as parts.

``media("https://…/cat.jpg")`` is a value a cell references as ``{{cat}}``: it becomes a ``uri`` part
(image, audio, video or document by its MIME type, guessed from the extension or given), for
http(s), ``gs://`` and YouTube URLs. Every part's MIME type goes through :func:`api_mime_type`, which
turns Python's guesses (``audio/x-wav``) into the API's names (``audio/wav``) and refuses, in one
line, a type the API does not take. No I/O here.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from .errors import TemplateError

__all__ = ["Media", "media", "api_mime_type", "part_kind", "ACCEPTED"]

_OFFICE = (
    "application/vnd.openxmlformats-officedocument.presentationml.presentation", "application/vnd.ms-powerpoint",
    "application/vnd.oasis.opendocument.presentation",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template", "application/vnd.oasis.opendocument.text",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "application/vnd.ms-excel",
    "application/vnd.oasis.opendocument.spreadsheet",
)  # fmt: skip
ACCEPTED = {
    "image": ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif", "image/gif", "image/bmp",
              "image/tiff"),
    "audio": ("audio/wav", "audio/mp3", "audio/aiff", "audio/aac", "audio/ogg", "audio/flac", "audio/mpeg",
              "audio/m4a", "audio/l16", "audio/opus", "audio/alaw", "audio/mulaw", "audio/webm"),
    "video": ("video/mp4", "video/mpeg", "video/mov", "video/avi", "video/x-flv", "video/mpg", "video/webm",
              "video/wmv", "video/3gpp"),
    "document": ("application/pdf", "text/plain", "text/html", "text/css", "text/csv", "text/markdown", "text/xml",
                 "text/rtf", "application/rtf", "application/json", "text/javascript", "application/x-javascript",
                 "text/x-python", "application/x-python-code", "text/x-typescript", "application/x-typescript", *_OFFICE),
}  # fmt: skip
"""The MIME types google-genai 3.6.1's image, audio, video and document content take (its ``*Content``
types), with the text types the API documents for document understanding. A type it names is kept as
it is (``audio/mpeg`` and ``audio/mp3`` are both its own names)."""

_ALIASES = {
    "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg",
    "audio/x-wav": "audio/wav", "audio/wave": "audio/wav", "audio/vnd.wave": "audio/wav",
    "audio/mpeg3": "audio/mp3", "audio/x-mp3": "audio/mp3",
    "audio/x-aiff": "audio/aiff", "audio/aif": "audio/aiff", "audio/x-aac": "audio/aac", "audio/aacp": "audio/aac",
    "audio/mp4": "audio/m4a", "audio/x-m4a": "audio/m4a", "audio/vorbis": "audio/ogg", "audio/x-flac": "audio/flac",
    "image/x-ms-bmp": "image/bmp", "image/x-bmp": "image/bmp", "image/tif": "image/tiff",
    "video/quicktime": "video/mov", "video/x-msvideo": "video/avi", "video/msvideo": "video/avi",
    "video/x-ms-wmv": "video/wmv", "video/3gpp2": "video/3gpp", "video/x-matroska": "video/webm",
    "application/x-pdf": "application/pdf", "text/x-markdown": "text/markdown", "application/xml": "text/xml",
    "application/javascript": "text/javascript", "text/x-script.python": "text/x-python",
}  # fmt: skip
_EXTENSIONS = {
    ".md": "text/markdown", ".py": "text/x-python", ".ts": "text/x-typescript", ".webm": "video/webm",
    ".heic": "image/heic", ".heif": "image/heif", ".flac": "audio/flac", ".aac": "audio/aac", ".m4a": "audio/m4a",
    ".mov": "video/mov", ".avi": "video/avi", ".wmv": "video/wmv", ".3gp": "video/3gpp", ".mpg": "video/mpg",
    ".flv": "video/x-flv", ".aiff": "audio/aiff", ".aif": "audio/aiff", ".opus": "audio/opus", ".ogg": "audio/ogg",
}  # fmt: skip
_YOUTUBE = re.compile(
    r"^https?://(www\.|m\.)?(youtube\.com/(watch|shorts|live|embed)|youtu\.be/)", re.IGNORECASE
)


def part_kind(mime: str) -> str:
    """The content block type for a MIME type: image, audio, video, or document."""
    major = mime.split("/", 1)[0]
    return major if major in ("image", "audio", "video") else "document"


def api_mime_type(mime: str, what: str = "this file") -> str:
    """``mime`` in the API's own name; a one-line :class:`TemplateError` for a type the API does not take."""
    name = mime.split(";", 1)[0].strip().lower()
    name = _ALIASES.get(name, name)
    if name in ACCEPTED[part_kind(name)]:
        return name
    if name.startswith("text/"):
        return "text/plain"  # any other text is taken as plain text
    raise TemplateError(
        f"{what}: the API does not take {name} files (it takes images, audio, video, PDF and text; "
        "convert it first, or pass the text itself)"
    )


def guess_mime_type(name: str) -> str | None:
    """The MIME type a file name or URL path suggests, in the API's names (None if it says nothing)."""
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name.rsplit("/", 1)[-1] else ""
    guessed = _EXTENSIONS.get(suffix) or mimetypes.guess_type(name)[0]
    return _ALIASES.get(guessed, guessed) if guessed else None


@dataclass(frozen=True)
class Media:
    """A remote or uploaded file to put in a prompt as itself (``{{ref}}``), not as its address."""

    uri: str
    mime_type: str | None

    @property
    def kind(self) -> str:
        return "video" if self.mime_type is None else part_kind(self.mime_type)

    def as_part(self) -> dict[str, Any]:
        part: dict[str, Any] = {"type": self.kind, "uri": self.uri}
        if self.mime_type:
            part["mime_type"] = self.mime_type
        return part

    def __repr__(self) -> str:
        return f"media({self.uri!r}, mime_type={self.mime_type!r})"


def media(uri: str, mime_type: str | None = None) -> Media:
    """A remote file for a prompt: ``{{ref}}`` sends it as an image, audio, video or document ``uri`` part.

    http(s) and ``gs://`` URLs take their MIME type from the extension unless ``mime_type`` is given;
    YouTube URLs are videos. Also an uploaded file's URI (``client.files.upload(...).uri``).

    >>> cats = media("https://example.com/cats-and-dogs.jpg")
    """
    scheme = urlparse(uri).scheme.lower()
    if scheme not in ("http", "https", "gs"):
        raise TemplateError(
            f"media({uri!r}): expected an http(s):// or gs:// URL (for a local file, use a Path)"
        )
    if mime_type is None and _YOUTUBE.match(uri):
        return Media(uri, None)
    guessed = mime_type or guess_mime_type(urlparse(uri).path)
    if guessed is None:
        raise TemplateError(
            f"media({uri!r}): cannot tell its type from the URL: pass mime_type='image/png' (or the like)"
        )
    return Media(uri, api_mime_type(guessed, f"media({uri!r})"))
