"""The row cache of ``--over`` runs: every successful row, on disk as it arrives, keyed by its request.

A re-run (after Stop, an interrupt, a crash or a kernel restart) sends only the rows without a cached
answer, and the same rows and prompt give the same DataFrame instantly. Failures are never written, so
a re-run retries exactly the rows that have no answer. stdlib ``sqlite3`` in WAL mode (one writer,
readers never blocked; several kernels may share it).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

from .journal import connect

__all__ = ["RowCache", "request_key"]

_SCHEMA = (
    "create table if not exists rows (key text primary key, answer text not null, created real not null)"
)


def request_key(body: dict[str, Any], backend: str) -> str:
    """The hash of a row's full request (model, config, schema, input parts) and of what answers it."""
    canonical = json.dumps(
        {"backend": backend, "body": body}, sort_keys=True, ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class RowCache:
    """Answers by request key; one connection per cache, used from the run's threads under a lock."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / "rows.sqlite3"
        self._db = connect(self.path)
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # sqlite's limit on bound parameters
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"select key, answer from rows where key in ({marks})", chunk)
                found.update((key, json.loads(answer)) for key, answer in rows)
        return found

    def put(self, key: str, answer: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("insert or replace into rows values (?, ?, ?)",
                             (key, json.dumps(answer, ensure_ascii=False, default=str), time.time()))  # fmt: skip

    def stats(self) -> tuple[int, int]:
        """Rows held, and bytes on disk (the database and its write-ahead log)."""
        with self._lock:
            (count,) = self._db.execute("select count(*) from rows").fetchone()
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.exists())
        return int(count), size

    def clear(self) -> int:
        with self._lock:
            (count,) = self._db.execute("select count(*) from rows").fetchone()
            self._db.execute("delete from rows")
            self._db.execute("vacuum")
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._db.close()
