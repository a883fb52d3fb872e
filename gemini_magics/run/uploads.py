"""Files a request names, made ready to send: read now (inline), or uploaded through the Files API.

Big files go up once per kernel and content hash (``uploaded``, the session's map): a re-run of the cell,
a row, a batch job or another cell with the same bytes reuses the upload. Used by every way a cell runs.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._client import Client

__all__ = ["as_sent", "upload_pending"]


def upload_pending(client: Client, parts: list[Any], uploaded: dict[str, Any] | None = None) -> list[Any]:
    """Parts with every file too big to send inline uploaded through the Files API."""
    from ..inputs import PendingUpload

    cache = uploaded if uploaded is not None else {}
    ready: list[Any] = []
    for part in parts:
        if not isinstance(part, PendingUpload):
            ready.append(part)
            continue
        digest = sha256_of(part.path)
        with _lock_for(digest):  # rows sending the same file at once: one uploads, the others wait for it
            file = cache.get(digest)
            if file is None:
                size = part.path.stat().st_size / 1e6
                print(f"gemini-magics: uploading {part.path.name} ({size:.1f} MB) through the Files API…", flush=True)
                file = client.files.upload(part.path, mime_type=part.mime_type)
                if file.state not in (None, "ACTIVE"):
                    print(f"gemini-magics: {file.name} is {file.state}: waiting until it is ACTIVE…", flush=True)
                file = cache[digest] = client.files.wait_active(file.name, poll_interval=0.25)
        ready.append(file.as_part())
    return ready


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(digest: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(digest, threading.Lock())


def as_sent(value: Any, client: Client, uploaded: dict[str, Any]) -> Any:
    """A row's input as it goes out: files read now (inline) or uploaded (big ones)."""
    from ..inputs import PendingInline

    if isinstance(value, list) and any(getattr(v, "path", None) is not None for v in value):
        read = [v.part() if isinstance(v, PendingInline) else v for v in value]
        return upload_pending(client, read, uploaded)
    return value


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
