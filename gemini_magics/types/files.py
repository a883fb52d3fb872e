"""The Files API resource (camelCase on the wire)."""

from __future__ import annotations

from pydantic import AliasChoices, Field

from ._base import BaseModel
from .interaction import ErrorDetail


class File(BaseModel):
    name: str = ""
    display_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices("displayName", "display_name"),
        serialization_alias="displayName",
    )
    mime_type: str | None = Field(
        default=None, validation_alias=AliasChoices("mimeType", "mime_type"), serialization_alias="mimeType"
    )
    size_bytes: int | None = Field(
        default=None,
        validation_alias=AliasChoices("sizeBytes", "size_bytes"),
        serialization_alias="sizeBytes",
    )
    create_time: str | None = Field(
        default=None,
        validation_alias=AliasChoices("createTime", "create_time"),
        serialization_alias="createTime",
    )
    update_time: str | None = Field(
        default=None,
        validation_alias=AliasChoices("updateTime", "update_time"),
        serialization_alias="updateTime",
    )
    expiration_time: str | None = Field(
        default=None,
        validation_alias=AliasChoices("expirationTime", "expiration_time"),
        serialization_alias="expirationTime",
    )
    sha256_hash: str | None = Field(
        default=None,
        validation_alias=AliasChoices("sha256Hash", "sha256_hash"),
        serialization_alias="sha256Hash",
    )
    uri: str | None = None
    download_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("downloadUri", "download_uri"),
        serialization_alias="downloadUri",
    )
    state: str | None = None
    source: str | None = None
    error: ErrorDetail | None = None

    def as_part(self) -> dict[str, str]:
        """The content block that references this file inside an interaction's input."""
        mime = self.mime_type or "application/octet-stream"
        kind = mime.split("/", 1)[0]
        block_type = kind if kind in ("image", "audio", "video") else "document"
        return {"type": block_type, "uri": self.uri or self.name, "mime_type": mime}
