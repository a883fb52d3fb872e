"""The ledger of ``--batch`` runs: which row went to which job, and every result read back, on disk.

A run of a million rows cannot keep its rows in memory, nor trust a kernel to live as long as its jobs.
Beside the row cache (the same sqlite file, so a run's rows join their cached answers) the ledger keeps:

- ``batch_rows``: each row of a run, in input order, with its label and request key;
- ``batch_pending``: request keys sent in a job whose results are not read yet (a re-run finds them
  there and follows that job instead of sending them again);
- ``batch_results``: each result read from a job, ok or failed (ok answers also go to the row cache,
  unless the run asked for ``--no-cache``).

Runs past the last :data:`KEEP_RUNS` are pruned when a new one starts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .cache import ROWS_SCHEMA
from .journal import connect, transaction

__all__ = ["KEEP_RUNS", "Ledger"]

KEEP_RUNS = 20
_SCHEMA = f"""
{ROWS_SCHEMA};
create table if not exists batch_runs (run text primary key, started real not null, detail text not null);
create table if not exists batch_rows (run text not null, position integer not null, label text, key text not null,
                                       missing text, primary key (run, position)) without rowid;
create table if not exists batch_pending (key text primary key, run text not null, part integer not null, job text);
create index if not exists batch_pending_job on batch_pending (job);
create index if not exists batch_pending_part on batch_pending (run, part);
create table if not exists batch_results (key text primary key, outcome text not null);
"""
FETCH = 16_384


class Ledger:
    """One connection, used from the run's threads under a lock."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / "rows.sqlite3"
        self._lock = threading.Lock()
        self._db = connect(self.path)
        self._db.executescript(_SCHEMA)

    def start(self, run: str, detail: dict[str, Any]) -> None:
        """A new run; the oldest past :data:`KEEP_RUNS` are dropped with their rows."""
        with self._lock, self._transaction():
            self._db.execute("insert or replace into batch_runs values (?, ?, ?)", (run, time.time(), json.dumps(detail)))
            old = [r for (r,) in self._db.execute("select run from batch_runs order by started desc limit -1 offset ?",
                                                  (KEEP_RUNS,))]  # fmt: skip
            for each in old:
                self._drop(each)

    def detail(self, run: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("select detail from batch_runs where run = ?", (run,)).fetchone()
        return json.loads(row[0]) if row else None

    def add_rows(self, run: str, rows: Iterable[tuple[int, str, str, str | None]]) -> None:
        """``(position, label, key, missing)`` for each row of a chunk."""
        with self._lock, self._transaction():
            self._db.executemany("insert or replace into batch_rows values (?, ?, ?, ?, ?)", ((run, *r) for r in rows))

    def pending(self, keys: list[str]) -> dict[str, tuple[str, str | None]]:
        """``(run, job)`` each of ``keys`` was sent in (job None: not yet created), for keys whose results
        are unread."""
        found: dict[str, tuple[str, str | None]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"select key, run, job from batch_pending where key in ({marks})", chunk)
                found.update((key, (run, job)) for key, run, job in rows)
        return found

    def spool(self, run: str, part: int, keys: list[str]) -> None:
        """Keys written to a part's file (its job is named by :meth:`assign` once created)."""
        with self._lock, self._transaction():
            self._db.executemany("insert or replace into batch_pending values (?, ?, ?, null)",
                                 ((k, run, part) for k in keys))  # fmt: skip

    def assign(self, run: str, part: int, job: str) -> None:
        with self._lock, self._transaction():
            self._db.execute("update batch_pending set job = ? where run = ? and part = ?", (job, run, part))

    def add_results(self, results: list[tuple[str, str]], answers: list[tuple[str, str]]) -> None:
        """Results read from a job, as JSON text by key (an outcome each); ``answers``, the ok ones' answers,
        also go to the row cache. One transaction for many: a million rows in seconds."""
        now = time.time()
        with self._lock, self._transaction():
            self._db.executemany("insert or replace into batch_results values (?, ?)", results)
            self._db.executemany("insert or replace into rows values (?, ?, ?)", ((k, a, now) for k, a in answers))

    def pending_in(self, job: str) -> bool:
        """Whether any key of ``job`` still waits for its result to be read."""
        with self._lock:
            return self._db.execute("select 1 from batch_pending where job = ? limit 1", (job,)).fetchone() is not None

    def read(self, job: str) -> None:
        """A job's results are all in: its keys are no longer pending."""
        with self._lock, self._transaction():
            self._db.execute("delete from batch_pending where job = ?", (job,))

    def rows(self, run: str) -> Iterator[list[tuple[int, str, str | None, str | None, str | None, str | None]]]:
        """The run's rows in input order, a chunk at a time: ``(position, label, missing, cached answer,
        result, pending job)``."""
        query = ("select b.position, b.label, b.missing, r.answer, x.outcome, p.job from batch_rows b "
                 "left join rows r on r.key = b.key left join batch_results x on x.key = b.key "
                 "left join batch_pending p on p.key = b.key where b.run = ? order by b.position")  # fmt: skip
        after = query.replace("where b.run = ?", "where b.run = ? and b.position > ?") + " limit ?"
        last = -1
        while True:  # a page at a time, by position: the lock is never held across a yield
            with self._lock:
                chunk = self._db.execute(after, (run, last, FETCH)).fetchall()
            if not chunk:
                return
            yield chunk
            last = chunk[-1][0]

    def count(self, run: str) -> int:
        with self._lock:
            (n,) = self._db.execute("select count(*) from batch_rows where run = ?", (run,)).fetchone()
        return int(n)

    def clear(self) -> None:
        with self._lock, self._transaction():
            for table in ("batch_runs", "batch_rows", "batch_pending", "batch_results"):
                self._db.execute(f"delete from {table}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _drop(self, run: str) -> None:
        self._db.execute("delete from batch_results where key in (select key from batch_rows where run = ?)", (run,))
        self._db.execute("delete from batch_rows where run = ?", (run,))
        self._db.execute("delete from batch_runs where run = ?", (run,))

    def _transaction(self) -> Any:
        return transaction(self._db)
