"""``client.files``: resumable upload, get, list, delete, download, and waiting for ACTIVE."""

from __future__ import annotations

import functools
import mimetypes
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from .._constants import UPLOAD_CHUNK_SIZE
from .._exceptions import APIConnectionError, APIResponseValidationError, GeminiError
from .._retry import retry_delay
from ..types.files import File

if TYPE_CHECKING:
    from .._client import Client


def _file_id(name: str) -> str:
    return name if name.startswith("files/") else f"files/{name}"


READ_PIECE = 1024 * 1024


class _Source:
    """What an upload sends: bytes in memory, or a file on disk read a chunk at a time (a big file is
    never held whole)."""

    def __init__(self, file: str | os.PathLike[str] | bytes | IO[bytes]) -> None:
        self._path: Path | None = None
        self._data = b""
        self.name: str | None = None
        if isinstance(file, bytes):
            self._data = file
        elif isinstance(file, str | os.PathLike):
            self._path = Path(file)
            self.name = self._path.name
        else:
            self._data = file.read()
            self.name = getattr(file, "name", None)
        self.size = self._path.stat().st_size if self._path is not None else len(self._data)

    def piece(self, offset: int, length: int) -> Any:
        """The bytes at ``offset``: from memory, or a callable reading the file as they are sent."""
        if self._path is None:
            return self._data[offset : offset + length]
        return functools.partial(self._pieces, offset, length)

    def _pieces(self, offset: int, length: int) -> Iterator[bytes]:
        assert self._path is not None
        with self._path.open("rb") as stream:
            stream.seek(offset)
            left = length
            while left > 0 and (piece := stream.read(min(READ_PIECE, left))):
                left -= len(piece)
                yield piece


class Files:
    def __init__(self, client: Client) -> None:
        self._client = client

    def upload(
        self,
        file: str | os.PathLike[str] | bytes | IO[bytes],
        *,
        mime_type: str | None = None,
        display_name: str | None = None,
        name: str | None = None,
        chunk_size: int = UPLOAD_CHUNK_SIZE,
        extra_headers: Mapping[str, str] | None = None,
    ) -> File:
        """Upload with the resumable protocol: a ``start`` request, then ``upload`` chunks, the last one ``finalize``."""
        source = _Source(file)
        mime_type = mime_type or (mimetypes.guess_type(source.name)[0] if source.name else None) or "application/octet-stream"
        upload_url = self._start_upload(source, mime_type, display_name, name, extra_headers)
        client = self._client
        offset = failures = 0
        while True:
            length = min(chunk_size, source.size - offset)
            last = offset + length >= source.size
            headers = {
                "X-Goog-Upload-Command": "upload, finalize" if last else "upload",
                "X-Goog-Upload-Offset": str(offset),
                "Content-Type": mime_type,
                "Content-Length": str(length),
            }
            try:  # the upload URL is the credential: no API key on chunks
                response = client.request("POST", upload_url, content=source.piece(offset, length), headers=headers,
                                          max_retries=0)  # fmt: skip
            except APIConnectionError:
                # resumable: ask the server how much it holds, and go on from there
                failures += 1
                if failures > client.max_retries:
                    raise
                client._sleep(retry_delay(failures - 1))
                offset = self._received(upload_url)
                continue
            status = response.headers.get("x-goog-upload-status")
            offset += length
            if last:
                if status != "final":
                    raise APIResponseValidationError(
                        f"upload not finalized (x-goog-upload-status={status!r})"
                    )
                return File.model_validate(response.json().get("file", {}))
            if status != "active":
                raise APIResponseValidationError(f"upload interrupted (x-goog-upload-status={status!r})")

    def _received(self, upload_url: str) -> int:
        """The resumable protocol's ``query``: how many bytes of the upload the server holds."""
        response = self._client.request("POST", upload_url, headers={"X-Goog-Upload-Command": "query"})
        received = response.headers.get("x-goog-upload-size-received")
        if response.headers.get("x-goog-upload-status") != "active" or received is None:
            raise APIResponseValidationError("the upload cannot be resumed (the server no longer holds it)")
        return int(received)

    def _start_upload(
        self, source: _Source, mime_type: str, display_name: str | None, name: str | None,
        extra_headers: Mapping[str, str] | None,
    ) -> str:
        """The resumable protocol's ``start`` request; the upload URL it answers with."""
        meta: dict[str, Any] = {"display_name": display_name or source.name, "mime_type": mime_type,
                                "size_bytes": source.size}  # fmt: skip
        if name:
            meta["name"] = _file_id(name)
        headers = dict(extra_headers or {})
        headers.update({
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(source.size),
            "X-Goog-Upload-Header-Content-Type": mime_type,
        })  # fmt: skip
        if source.name:
            headers["X-Goog-Upload-File-Name"] = source.name
        response = self._client._post("files", upload=True, extra_headers=headers,
                                      json={"file": {k: v for k, v in meta.items() if v is not None}})  # fmt: skip
        upload_url = response.headers.get("x-goog-upload-url")
        if not upload_url:
            raise APIResponseValidationError("the upload start response has no x-goog-upload-url header")
        return str(upload_url)

    def get(self, name: str) -> File:
        return File.model_validate(self._client._get(_file_id(name)).json())

    def list(self, *, page_size: int = 100) -> Iterator[File]:
        """Every file, following ``nextPageToken`` pages lazily."""
        for item in self._client._pages("files", "files", page_size):
            yield File.model_validate(item)

    def delete(self, name: str) -> None:
        self._client._delete(_file_id(name))

    def download(self, name: str) -> bytes:
        return self._client._get(f"{_file_id(name)}:download", params={"alt": "media"}, accept="*/*").content

    def lines(self, name: str) -> Iterator[str]:
        """A (JSONL) file's lines as they arrive: the file is never held whole."""
        response = self._client._get(f"{_file_id(name)}:download", params={"alt": "media"}, accept="*/*", stream=True)
        try:
            yield from response.iter_lines()
        finally:
            response.close()

    def wait_active(self, name: str, *, timeout: float = 300.0, poll_interval: float = 1.0) -> File:
        """Poll until the file is ``ACTIVE`` (large and video files are processed first)."""
        deadline = time.monotonic() + timeout
        while True:
            file = self.get(name)
            if file.state in (None, "ACTIVE"):
                return file
            if file.state == "FAILED":
                message = file.error.message if file.error else "processing failed"
                raise GeminiError(f"file {file.name} failed: {message}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"file {file.name} still {file.state} after {timeout} s")
            self._client._sleep(poll_interval)
