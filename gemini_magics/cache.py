"""The row cache of ``--over`` runs: every successful row, on disk as it arrives, keyed by its request.

A re-run (after Stop, an interrupt, a crash or a kernel restart) sends only the rows without a cached
answer, and the same rows and prompt give the same DataFrame instantly. Failures are never written, so
a re-run retries exactly the rows that have no answer. stdlib ``sqlite3`` in WAL mode (one writer,
readers never blocked; several kernels may share it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .journal import connect, transaction

__all__ = ["ROWS_SCHEMA", "KeyMaker", "RowCache"]

ROWS_SCHEMA = (
    "create table if not exists rows (key text primary key, answer text not null, created real not null)"
)


class KeyMaker:
    """A row's cache key: the hash of its full request (model, config, schema, input parts) and of what
    answers it. What all rows of a run share is written out once, and only each row's input per row (a
    million rows in seconds)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._shared: dict[str, Any] | None = None
        self._prefix = b""

    def __call__(self, body: dict[str, Any]) -> str:
        shared = {k: v for k, v in body.items() if k != "input"}
        if shared != self._shared:
            self._shared = shared
            self._prefix = _canonical({"backend": self.backend, "body": shared}).encode()
        digest = hashlib.sha256(self._prefix)
        digest.update(b"\0" + _canonical(body.get("input")).encode())
        return digest.hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


class RowCache:
    """Answers by request key; one connection per cache, used from the run's threads under a lock.

    A cache that cannot be used (a full disk, a read-only or missing directory, a corrupt or truncated
    file) never costs an answer: reads then find nothing, writes are skipped, and ``notify`` hears once,
    in one line naming the path, what is wrong and the fix. The answers stay in the run's result.
    """

    def __init__(self, directory: Path, notify: Callable[[str], None] = lambda line: None) -> None:
        self.path = Path(directory) / "rows.sqlite3"
        self._notify = notify
        self._told: set[str] = set()
        self._problem: str | None = None
        """Why the file is not used, once it failed (the one line ``%interact cache`` says)."""
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            self._db = connect(self.path)
            self._db.execute(ROWS_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            self._fail("cannot be opened", exc)

    @property
    def usable(self) -> bool:
        return self._db is not None

    def _fail(self, doing: str, exc: BaseException) -> None:
        """Stop using the file (it failed once: it will fail again) and say so, once."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        self._problem = f"the row cache at {self.path} {doing}: {problem(exc)}; {fix(exc)}"
        if self._problem not in self._told:
            self._told.add(self._problem)
            self._notify(f"gemini-magics: {self._problem}")

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            try:
                for start in range(0, len(keys), 500):  # sqlite's limit on bound parameters
                    if self._db is None:
                        break
                    chunk = keys[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(f"select key, answer from rows where key in ({marks})", chunk)
                    found.update((key, json.loads(answer)) for key, answer in rows)
            except (sqlite3.Error, OSError, ValueError) as exc:
                self._fail("cannot be read", exc)
        return found

    def put_many(self, answers: list[tuple[str, dict[str, Any]]]) -> bool:
        """Write answers in one transaction (a third of the time per answer of one each); False (and the
        notice) when the cache cannot take them. Never raises."""
        now = time.time()
        rows = [(key, json.dumps(answer, ensure_ascii=False, default=str), now) for key, answer in answers]
        with self._lock:
            if self._db is None:
                return False
            try:
                with transaction(self._db):
                    self._db.executemany("insert or replace into rows values (?, ?, ?)", rows)
            except (sqlite3.Error, OSError) as exc:
                self._fail("could not be written, so these answers are not cached (they are all in the result)", exc)
                return False
        return True

    def stats(self) -> tuple[int, int]:
        """Rows held, and bytes on disk (the database and its write-ahead log)."""
        from .errors import MagicError

        with self._lock:
            if self._db is None:
                raise MagicError(self._problem or f"the row cache at {self.path} cannot be used")
            try:
                (count,) = self._db.execute("select count(*) from rows").fetchone()
            except sqlite3.Error as exc:
                raise MagicError(f"the row cache at {self.path} cannot be read: {problem(exc)}; "
                                 "%interact cache clear removes it") from None  # fmt: skip
        size = sum(p.stat().st_size for p in self._files() if p.exists())
        return int(count), size

    def _files(self) -> list[Path]:
        return [self.path.parent / (self.path.name + suffix) for suffix in ("", "-wal", "-shm")]

    def clear(self) -> int:
        """Empty the cache; a file that cannot be opened or read (corrupt) is removed instead. The number
        of rows dropped (0 for a removed file)."""
        with self._lock:
            if self._db is not None:
                try:
                    (count,) = self._db.execute("select count(*) from rows").fetchone()
                    self._db.execute("delete from rows")
                    self._db.execute("vacuum")
                    return int(count)
                except sqlite3.DatabaseError:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.close()
                    self._db = None
            for path in self._files():
                path.unlink(missing_ok=True)
            self._told.clear()
            self._problem = None
            try:
                self._db = connect(self.path)
                self._db.execute(ROWS_SCHEMA)
            except (sqlite3.Error, OSError) as exc:
                self._db = None
                from .errors import MagicError

                raise MagicError(f"removed the row cache at {self.path}, but a new one cannot be made there: "
                                 f"{problem(exc)}; {fix(exc)}") from None  # fmt: skip
            return 0

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def problem(exc: BaseException) -> str:
    """What went wrong, in a few words (sqlite's and the OS's messages are already that)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def fix(exc: BaseException) -> str:
    text = problem(exc)
    if "full" in text or "no space" in text:
        return "free some disk space, or point InteractMagics.cache_dir elsewhere"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return "%interact cache clear removes it"
    return "check the directory, or point InteractMagics.cache_dir elsewhere"
