"""File search stores on the local server: files imported into a store are cut into passages and indexed
with SQLite's FTS5, and the ``file_search`` tool really searches them (BM25), offline.

The API's shape: ``POST fileSearchStores`` makes a store, ``POST fileSearchStores/ID:importFile`` adds an
uploaded file (a long-running operation, done at once here), and a ``file_search`` tool naming stores finds
passages the answer then cites (``file_citation``). Only text can be indexed here (text/*, JSON, CSV,
Markdown); other files are refused with a 400 that says so.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

from .store import now_iso
from .wire import RequestError

PASSAGE_CHARS = 700
STOP_WORDS = frozenset(
    ["the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "her", "was", "one", "our", "out", "who", "what", "where", "when", "which", "with", "from", "that", "this", "there", "their", "they", "them", "have", "has", "had", "does", "did", "how", "why", "into", "about", "come", "came", "some", "more", "most", "other", "than", "then"]
)
"""Words too common to say what a question is about (they would match every passage)."""
_WORD = re.compile(r"[^\W_]{3,}", re.UNICODE)
_TEXT_TYPES = ("application/json", "text/csv", "application/x-ndjson")


@dataclass(frozen=True)
class Passage:
    store: str
    file: str
    title: str
    text: str
    score: float


class FileSearchStores:
    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("CREATE TABLE stores (name TEXT PRIMARY KEY, display_name TEXT, create_time TEXT)")
            self._db.execute("CREATE VIRTUAL TABLE passages USING fts5(store UNINDEXED, file UNINDEXED, "
                             "title UNINDEXED, text, tokenize='unicode61')")  # fmt: skip

    def create(self, display_name: str | None) -> dict[str, Any]:
        name = f"fileSearchStores/{secrets.token_hex(6)}"
        with self._lock:
            self._db.execute("INSERT INTO stores VALUES (?, ?, ?)", (name, display_name or "", now_iso()))
        return self.get(name)

    def get(self, name: str) -> dict[str, Any]:
        name = _store_name(name)
        with self._lock:
            row = self._db.execute("SELECT display_name, create_time FROM stores WHERE name = ?", (name,)).fetchone()
            files = self._db.execute("SELECT COUNT(DISTINCT file) FROM passages WHERE store = ?", (name,)).fetchone()[0]
        if row is None:
            raise RequestError(404, "not_found", f"{name} not found")
        return {"name": name, "displayName": row[0], "createTime": row[1], "activeDocumentsCount": str(files)}

    def delete(self, name: str) -> None:
        self.get(name)
        with self._lock:
            self._db.execute("DELETE FROM passages WHERE store = ?", (_store_name(name),))
            self._db.execute("DELETE FROM stores WHERE name = ?", (_store_name(name),))

    def import_file(self, name: str, file_name: str, display_name: str | None, mime_type: str, data: bytes) -> dict[str, Any]:
        """Index a file's text in the store; the API's long-running operation, already done."""
        store = self.get(name)["name"]
        if not (mime_type.startswith("text/") or mime_type in _TEXT_TYPES):
            raise RequestError(400, "invalid_request", f"{file_name} is {mime_type}: the local server indexes text files "
                               "only (text/*, JSON, CSV)")  # fmt: skip
        text = data.decode("utf-8", "replace")
        rows = [(store, file_name, display_name or file_name, piece) for piece in _passages(text)]
        with self._lock:
            self._db.executemany("INSERT INTO passages VALUES (?, ?, ?, ?)", rows)
        operation = f"{store}/operations/{secrets.token_hex(6)}"
        return {"name": operation, "done": True, "response": {"documentName": f"{store}/documents/{file_name.split('/')[-1]}",
                                                             "passages": len(rows)}}  # fmt: skip

    def search(self, stores: list[str], query: str, top_k: int = 5) -> list[Passage]:
        """The best passages for ``query`` (any of its words but the commonest) across ``stores``, best first."""
        words = sorted({w.lower() for w in _WORD.findall(query)} - STOP_WORDS)
        names = [_store_name(s) for s in stores]
        if not words or not names:
            return []
        match = " OR ".join(f'"{w}"' for w in words)  # quoted: a word is never FTS5 syntax
        marks = ",".join("?" * len(names))
        with self._lock:
            rows = self._db.execute(
                f"SELECT store, file, title, text, bm25(passages) FROM passages WHERE passages MATCH ? "
                f"AND store IN ({marks}) ORDER BY bm25(passages) LIMIT ?", (match, *names, max(1, top_k)),
            ).fetchall()  # fmt: skip
        return [Passage(row[0], row[1], row[2], row[3], -float(row[4])) for row in rows]


def _store_name(name: str) -> str:
    return name if name.startswith("fileSearchStores/") else f"fileSearchStores/{name}"


def _passages(text: str) -> list[str]:
    """Paragraphs, packed into passages of about :data:`PASSAGE_CHARS`."""
    out, current = [], ""
    for paragraph in (p.strip() for p in re.split(r"\n\s*\n", text)):
        if not paragraph:
            continue
        if current and len(current) + len(paragraph) > PASSAGE_CHARS:
            out.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
        while len(current) > 2 * PASSAGE_CHARS:
            out.append(current[:PASSAGE_CHARS])
            current = current[PASSAGE_CHARS:]
    return out + ([current] if current else [])
