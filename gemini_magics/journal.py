"""The on-disk journal of long runs (background interactions, batch jobs) that outlive a kernel.

A kernel restart loses every thread and variable, but not the work the API is still doing: the ids of
running background interactions and the names of batch jobs are written here when they start and
marked when they end, so a new kernel can list them (``%interact wait``, ``%interact batch list``) and
re-attach. stdlib ``sqlite3`` in WAL mode: several kernels of one user may share the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CACHE_DIR_ENV_VAR", "Journal", "JournalEntry", "default_cache_dir"]

CACHE_DIR_ENV_VAR = "GEMINI_MAGICS_CACHE_DIR"

_SCHEMA = """
create table if not exists runs (
    id text primary key,
    kind text not null,
    model text not null,
    out text,
    chain text,
    base_url text not null,
    started real not null,
    status text not null,
    ended real,
    detail text not null default '{}'
)
"""


def default_cache_dir() -> Path:
    """``$GEMINI_MAGICS_CACHE_DIR``, else the platform's user cache directory for gemini-magics."""
    configured = os.environ.get(CACHE_DIR_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("gemini-magics", appauthor=False))


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """``begin`` … ``commit``, ``rollback`` on error: our connections autocommit otherwise (each statement,
    each row of an ``executemany``, a transaction of its own). sqlite ends a transaction itself on some errors
    (a full disk): then there is nothing to roll back, and the error is the one raised."""
    connection.execute("begin")
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            connection.execute("rollback")
        raise
    connection.execute("commit")


def connect(path: Path) -> sqlite3.Connection:
    """A connection to one of our sqlite files: WAL (readers never wait for the writer), a busy timeout.

    Private to the user: prompts and answers are in there (the directory 0700, the files 0600; sqlite
    gives its -wal and -shm files the database file's mode)."""
    private_dir(path.parent)
    if not path.exists():
        path.touch(mode=0o600)
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        connection.execute("pragma journal_mode=wal")
        connection.execute("pragma synchronous=normal")
    except sqlite3.Error:
        connection.close()
        raise
    return connection


def private_dir(directory: Path) -> None:
    """Make ``directory`` (and its parents) if needed; ours is readable by the user alone."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        if directory.stat().st_mode & 0o077 and directory.stat().st_uid == os.getuid():
            directory.chmod(0o700)


@dataclass
class JournalEntry:
    id: str
    kind: str
    """``interaction`` or ``batch``."""
    model: str
    base_url: str
    out: str | None = None
    chain: str | None = None
    started: float = field(default_factory=time.time)
    status: str = "running"
    ended: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def age(self) -> str:
        seconds = int((self.ended or time.time()) - self.started)
        return (
            f"{seconds // 3600} h {seconds % 3600 // 60} min"
            if seconds >= 3600
            else f"{seconds // 60} min {seconds % 60} s"
        )


class Journal:
    """Runs started from any kernel of this user, newest first."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / "journal.sqlite3"

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(connect(self.path)) as db:
            db.execute(_SCHEMA)
            yield db

    def add(self, entry: JournalEntry) -> None:
        with self._db() as db:
            db.execute(
                "insert or replace into runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.id, entry.kind, entry.model, entry.out, entry.chain, entry.base_url, entry.started,
                 entry.status, entry.ended, json.dumps(entry.detail)),
            )  # fmt: skip

    def end(self, entry_id: str, status: str, **detail: Any) -> None:
        """Mark a run ended (with what it ended as); extra ``detail`` is merged into the entry's."""
        with self._db() as db:
            row = db.execute("select detail from runs where id = ?", (entry_id,)).fetchone()
            if row is None:
                return
            merged = {**json.loads(row[0]), **detail}
            db.execute("update runs set status = ?, ended = ?, detail = ? where id = ?",
                       (status, time.time(), json.dumps(merged), entry_id))  # fmt: skip

    def forget(self, entry_id: str) -> bool:
        """Drop a run from the journal (a job that cannot come back); whether it was there."""
        with self._db() as db:
            return db.execute("delete from runs where id = ?", (entry_id,)).rowcount > 0

    def get(self, entry_id: str) -> JournalEntry | None:
        with self._db() as db:
            row = db.execute("select * from runs where id = ?", (entry_id,)).fetchone()
        return _entry(row) if row else None

    def entries(self, kind: str, *, running: bool | None = None, limit: int = 50) -> list[JournalEntry]:
        query = "select * from runs where kind = ?"
        if running is not None:
            query += " and ended is null" if running else " and ended is not null"
        with self._db() as db:
            rows = db.execute(query + " order by started desc limit ?", (kind, limit)).fetchall()
        return [_entry(row) for row in rows]


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    entry_id, kind, model, out, chain, base_url, started, status, ended, detail = row
    return JournalEntry(entry_id, kind, model, base_url, out=out, chain=chain, started=started, status=status,
                        ended=ended, detail=json.loads(detail))  # fmt: skip
