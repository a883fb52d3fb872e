"""The Files API resource (camelCase on the wire; snake_case in Python, either accepted)."""

from __future__ import annotations

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

from ._base import BaseModel
from .interaction import ErrorDetail

__all__ = [
    "File",
]


class File(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    name: str = ""
    display_name: str | None = None
    mime_type: str | None = None
    size_bytes: int | None = None
    create_time: str | None = None
    update_time: str | None = None
    expiration_time: str | None = None
    sha256_hash: str | None = None
    uri: str | None = None
    download_uri: str | None = None
    state: str | None = None
    source: str | None = None
    error: ErrorDetail | None = None

    def as_part(self) -> dict[str, str]:
        """The content block that references this file inside an interaction's input."""
        from .._media import part_kind

        mime = self.mime_type or "application/octet-stream"
        return {"type": part_kind(mime), "uri": self.uri or self.name, "mime_type": mime}
