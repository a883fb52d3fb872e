"""Server-side state: interaction records (with their event logs) and uploaded files."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import random
import secrets
import threading
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, overload

_NOW: tuple[int, str] = (0, "")


def now_iso() -> str:
    """The time to the second, as the API writes it (made once a second: every event carries one)."""
    global _NOW
    second = int(time.time())
    if _NOW[0] != second:
        _NOW = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _NOW[1]


SERVED_BY_FIELD = "x_gemini_magics_served_by"
"""What answered (the local engine), beside the requested ``model``; the client's ``Interaction.served_by``."""
INCOMPLETE_FIELD = "x_gemini_magics_incomplete_details"
"""Why an ``incomplete`` interaction stopped (``max_output_tokens``); the client's ``Interaction.incomplete_details``."""


_IDS = random.Random(secrets.randbits(128))
"""Interaction ids need to be unique, not secret (the key guards the server): drawn without a system call,
which released the GIL to dozens of engine threads on every request."""


def new_id(prefix: str = "v1_") -> str:
    return prefix + f"{_IDS.getrandbits(96):024x}"


def event_position(event_id: str | None) -> tuple[int, int]:
    """``"v1_x:7"`` → (7, 0); ``"v1_x:7.2"`` → (7, 2); anything unreadable → (0, 0), i.e. from the start."""
    if not event_id or ":" not in event_id:
        return (0, 0)
    tail = event_id.rsplit(":", 1)[1]
    major, _, minor = tail.partition(".")
    try:
        return (int(major), int(minor or 0))
    except ValueError:
        return (0, 0)


class Cancelled(Exception):
    """Raised inside an engine when its interaction was cancelled."""


class CompactLog(Sequence[dict[str, Any]]):
    """A finished interaction's event log, stored small and replayed exactly.

    Runs of plain text deltas (most of a log) are kept as one string and the offsets where each
    delta ended; every other event is kept as it was. Indexing regenerates the very same events
    (same ids, same text pieces), so resuming and ``GET ?stream=true`` behave as before compaction,
    while memory is about the text itself plus four bytes a delta.
    """

    def __init__(self, interaction_id: str, events: list[dict[str, Any]]) -> None:
        self._id = interaction_id
        self._segments: list[dict[str, Any] | tuple[int, int, str, array[int]]] = []
        self._starts: list[int] = []
        self._length = len(events)
        position = 0
        while position < len(events):
            end = position
            while end < len(events) and _plain_text_delta(events[end], events[position].get("index")):
                end += 1
            self._starts.append(position)
            if end - position > 1:
                pieces = [e["delta"]["text"] for e in events[position:end]]
                offsets = array("I", itertools.accumulate(len(p) for p in pieces))
                self._segments.append((events[position]["index"], end - position, "".join(pieces), offsets))
                position = end
            else:
                self._segments.append(events[position])
                position += 1

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, item: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, item: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, item: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(item, slice):
            return [self._event(i) for i in range(*item.indices(self._length))]
        if not -self._length <= item < self._length:
            raise IndexError(item)
        return self._event(item % self._length)

    def _event(self, position: int) -> dict[str, Any]:
        segment_number = bisect.bisect_right(self._starts, position) - 1
        segment = self._segments[segment_number]
        if isinstance(segment, dict):
            return segment
        index, _count, text, offsets = segment
        k = position - self._starts[segment_number]
        start = offsets[k - 1] if k else 0
        return {"event_type": "step.delta", "index": index, "delta": {"type": "text", "text": text[start : offsets[k]]},
                "event_id": f"{self._id}:{position + 1}"}  # fmt: skip

    def nbytes(self) -> int:
        """About what the compacted log holds: its text, offsets, and the events kept whole."""
        total = 0
        for segment in self._segments:
            if isinstance(segment, dict):
                total += 200 + len(json.dumps(segment, separators=(",", ":")))
            else:
                total += 100 + len(segment[2]) + 4 * len(segment[3])
        return total


def _plain_text_delta(event: dict[str, Any], index: Any) -> bool:
    delta = event.get("delta")
    return (
        event.get("event_type") == "step.delta" and event.get("index") == index and isinstance(delta, dict)
        and delta.keys() == {"type", "text"} and delta["type"] == "text" and set(event) == {"event_type", "index", "delta", "event_id"}
    )  # fmt: skip


@dataclass
class Record:
    """One interaction: its request, the chain it continues, and the growing log of its events."""

    id: str
    request: dict[str, Any]
    input_steps: list[dict[str, Any]]
    history: list[dict[str, Any]]
    stored: bool
    background: bool
    status: str = "in_progress"
    steps: list[dict[str, Any]] = field(default_factory=list)
    events: Sequence[dict[str, Any]] = field(default_factory=list)
    """The event log: a list while the interaction runs, a :class:`CompactLog` once it is finished."""
    usage: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    readers: int = 0
    finished_at: float | None = None
    """``time.monotonic()`` when it finished (retention counts from there)."""
    nbytes: int = 0
    """About what it holds once finished and compacted (retention's byte cap counts it)."""
    served_by: str = ""
    watched: bool = True
    """Whether anyone can see it while it runs (a stream, a background run, a stored one others may get). One
    nobody can (an unstored answer returned whole, as ``--over`` rows are) runs unpaced: its pacing is owed."""
    owed: float = 0.0
    """Seconds of pacing an unwatched run skipped: the response waits them out on the event loop instead of a
    worker thread sleeping through each delta (the answer still takes as long as its headers ask)."""
    incomplete_details: dict[str, Any] | None = None
    continuation: tuple[str, int] | None = None
    """Text left for the next hop of an answer handed back in hops, and the hops after that one."""
    continuation_token: str | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=set)
    _end_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=set)
    """Told only when the interaction finishes (a unary create waits for nothing else)."""
    _open_index: int | None = None

    @property
    def finished(self) -> bool:
        return self.done.is_set()

    # -- what the API returns -----------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The partial interaction carried by ``interaction.created`` / ``interaction.completed``."""
        req = self.request
        out: dict[str, Any] = {"id": self.id, "object": "interaction", "status": self.status,
                               "created": self.created, "updated": self.updated}  # fmt: skip
        for key in ("model", "agent"):
            if req.get(key):
                out[key] = req[key]
        # what no SDK defines goes under our own namespaced names (the SDKs keep unknown fields)
        if self.served_by:
            out[SERVED_BY_FIELD] = self.served_by
        if self.incomplete_details:
            out[INCOMPLETE_FIELD] = dict(self.incomplete_details)
        if self.continuation_token:
            out["continuation_token"] = self.continuation_token
        if self.usage:
            out["usage"] = dict(self.usage)
        return out

    def resource(self, *, include_input: bool = False) -> dict[str, Any]:
        out = self.summary()
        steps = (self.input_steps if include_input else []) + list(self.steps)
        out["steps"] = steps
        if include_input:
            out["input"] = self.request.get("input")
        if self.errors:
            out["errors"] = list(self.errors)
        # store and background are input-only in the SDK types: not echoed
        for key in ("system_instruction", "tools", "generation_config", "response_format", "response_mime_type",
                    "response_modalities", "previous_interaction_id", "agent_config", "service_tier"):  # fmt: skip
            if self.request.get(key) is not None:
                out[key] = self.request[key]
        return out

    def chain(self) -> list[dict[str, Any]]:
        """Everything the next interaction continuing from this one sees."""
        return self.history + self.input_steps + self.steps

    # -- the event log (written by the run thread, read by any number of async streams) ----------

    def emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            events = self.events
            assert isinstance(events, list), "a finished interaction's log is closed"
            event["event_id"] = f"{self.id}:{len(events) + 1}"
            events.append(event)
            self.updated = now_iso()
            waiters = list(self._waiters)
        for loop, flag in waiters:
            loop.call_soon_threadsafe(flag.set)

    def finish(self, status: str) -> None:
        self.status = status
        self.emit({"event_type": "interaction.completed", "interaction": self.summary()})
        with self._lock:
            if self.watched:  # one nobody watches (never a stored one) is dropped once answered: no compaction
                compact = CompactLog(self.id, list(self.events))
                self.events = compact
                self.nbytes = (
                    compact.nbytes()
                    + len(json.dumps(self.steps, separators=(",", ":")))
                    + len(json.dumps(self.input_steps, separators=(",", ":")))
                )
            self.finished_at = time.monotonic()
        self.done.set()
        with self._lock:
            waiters = list(self._waiters) + list(self._end_waiters)
        for loop, flag in waiters:
            loop.call_soon_threadsafe(flag.set)

    async def wait_for_events(self, seen: int, timeout: float = 15.0) -> None:
        """Until an event past the first ``seen`` (or the end, or ``timeout``)."""
        await self._wait(self._waiters, lambda: len(self.events) > seen or self.finished, timeout)

    async def wait_finished(self, timeout: float = 15.0) -> None:
        """Until the interaction finishes (or ``timeout``): one wake-up, not one per event."""
        await self._wait(self._end_waiters, lambda: self.finished, timeout)

    async def _wait(self, waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]], ready: Any,
                    timeout: float) -> None:  # fmt: skip
        loop = asyncio.get_running_loop()
        flag = asyncio.Event()
        with self._lock:
            if ready():
                return
            waiters.add((loop, flag))
        try:
            await asyncio.wait_for(flag.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                waiters.discard((loop, flag))

    # -- the writer API engines use --------------------------------------------------------------

    def check_cancelled(self) -> None:
        if self.cancel_requested.is_set():
            raise Cancelled()

    def begin_step(self, step: dict[str, Any]) -> int:
        self.check_cancelled()
        index = len(self.steps) + (1 if self._open_index is not None else 0)
        self._open_index = index
        self.emit({"event_type": "step.start", "index": index, "step": step})
        return index

    def delta(self, delta: dict[str, Any]) -> None:
        self.check_cancelled()
        assert self._open_index is not None, "delta outside a step"
        self.emit({"event_type": "step.delta", "index": self._open_index, "delta": delta})

    def end_step(self, final: dict[str, Any]) -> None:
        assert self._open_index is not None, "end_step outside a step"
        index, self._open_index = self._open_index, None
        self.steps.append(final)
        self.emit({"event_type": "step.stop", "index": index})

    def add_usage(self, *, input_tokens: int = 0, output_tokens: int = 0, thought_tokens: int = 0,
                  cached_tokens: int = 0, tool_use_tokens: int = 0, modality: str = "text",
                  grounding: str | None = None) -> None:  # fmt: skip
        """Count tokens as the API's ``usage`` does: totals, and input/output/cached by modality, tool-use
        tokens (what built-in tools fed back) and how often each grounding tool ran."""
        u = self.usage
        u["total_input_tokens"] = u.get("total_input_tokens", 0) + input_tokens
        u["total_output_tokens"] = u.get("total_output_tokens", 0) + output_tokens
        for name, tokens in (("total_thought_tokens", thought_tokens), ("total_cached_tokens", cached_tokens),
                             ("total_tool_use_tokens", tool_use_tokens)):  # fmt: skip
            if tokens:
                u[name] = u.get(name, 0) + tokens
        for name, tokens in (("input_tokens_by_modality", input_tokens), ("output_tokens_by_modality", output_tokens),
                             ("cached_tokens_by_modality", cached_tokens)):  # fmt: skip
            if tokens:
                _count_in(u.setdefault(name, []), "modality", modality, "tokens", tokens)
        if grounding in GROUNDING_TOOLS:
            _count_in(u.setdefault("grounding_tool_count", []), "type", grounding, "count", 1)
        u["total_tokens"] = (
            u["total_input_tokens"] + u["total_output_tokens"] + u.get("total_thought_tokens", 0)
            + u.get("total_tool_use_tokens", 0)
        )



GROUNDING_TOOLS = frozenset({"google_search", "google_maps", "retrieval"})
"""The grounding tools ``usage.grounding_tool_count`` counts (the SDK's ``GroundingToolCount`` types)."""


def _count_in(entries: list[dict[str, Any]], key: str, value: str, field_name: str, amount: int) -> None:
    for entry in entries:
        if entry[key] == value:
            entry[field_name] += amount
            return
    entries.append({key: value, field_name: amount})

@dataclass
class StoredFile:
    name: str
    display_name: str | None
    mime_type: str
    data: bytes
    create_time: str = field(default_factory=now_iso)
    created: float = field(default_factory=time.monotonic)
    ready_at: float = 0.0
    """Videos are PROCESSING for a moment after upload, as on the real API (clients must wait for ACTIVE)."""

    def resource(self, base_url: str, version: str) -> dict[str, Any]:
        import base64
        import hashlib

        return {
            "name": self.name, "displayName": self.display_name, "mimeType": self.mime_type,
            "sizeBytes": str(len(self.data)), "createTime": self.create_time, "updateTime": self.create_time,
            "sha256Hash": base64.b64encode(hashlib.sha256(self.data).digest()).decode(),
            "uri": f"{base_url}/{version}/{self.name}", "source": "UPLOADED",
            "state": "ACTIVE" if time.monotonic() >= self.ready_at else "PROCESSING",
        }  # fmt: skip


@dataclass
class Upload:
    meta: dict[str, Any]
    mime_type: str
    total: int | None
    data: bytearray = field(default_factory=bytearray)
    started: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Retention:
    """How long, and how much, the server keeps: like the real API, stored things expire.

    Finished interactions are kept for ``interaction_ttl`` seconds, at most ``max_interactions`` of
    them and ``max_interaction_bytes`` in all; files for ``file_ttl``, at most ``max_files`` and
    ``max_file_bytes``. Past a cap the oldest go first; running interactions are never evicted. An
    evicted id answers 404, as an expired one does on the real API.
    """

    interaction_ttl: float = 24 * 3600.0
    max_interactions: int = 2000
    max_interaction_bytes: int = 256 * 1024 * 1024
    file_ttl: float = 48 * 3600.0
    max_files: int = 500
    max_file_bytes: int = 2 * 1024 * 1024 * 1024
    upload_ttl: float = 3600.0
    """An upload session not finished within this is abandoned, its bytes dropped."""
    max_uploads: int = 64
    batch_ttl: float = 48 * 3600.0
    """Finished batch jobs (and their results) are kept this long, at most ``max_batches`` of them."""
    max_batches: int = 100


class Store:
    def __init__(self, retention: Retention | None = None) -> None:
        self.retention = retention or Retention()
        self.records: dict[str, Record] = {}
        self.files: dict[str, StoredFile] = {}
        self.uploads: dict[str, Upload] = {}
        self.fail_budget: dict[str, int] = {}
        self.signed_calls: dict[str, str] = {}
        """Function calls the model made after a thought, and the signature they must come back with."""
        self.continuations: dict[str, str] = {}
        """Continuation tokens not used yet, and the interaction that issued each."""
        self.lock = threading.Lock()
        self._next_sweep = 0.0

    def add(self, record: Record) -> None:
        with self.lock:
            self.records[record.id] = record
        self.sweep()

    def add_file(self, stored: StoredFile) -> None:
        with self.lock:
            self.files[stored.name] = stored
        self.sweep()

    def sweep(self, now: float | None = None, *, force: bool = False) -> None:
        """Drop what expired, then the oldest past the caps (finished interactions only).

        Cheap to call often: it looks at most once a second, unless a count cap is passed (or forced).
        """
        now = time.monotonic() if now is None else now
        keep = self.retention
        over_count = (len(self.records) > keep.max_interactions or len(self.files) > keep.max_files
                      or len(self.uploads) > keep.max_uploads)  # fmt: skip
        if not (force or over_count or now >= self._next_sweep):
            return
        self._next_sweep = now + 1.0
        evicted = 0
        with self.lock:
            finished = sorted(
                (r for r in self.records.values() if r.finished_at is not None),
                key=lambda r: r.finished_at or 0,
            )
            total = sum(r.nbytes for r in finished)
            for n, record in enumerate(finished):
                over = len(finished) - n > keep.max_interactions or total > keep.max_interaction_bytes
                if not over and now - (record.finished_at or now) <= keep.interaction_ttl:
                    continue
                if record.readers == 0:
                    self.records.pop(record.id, None)
                    total -= record.nbytes
                    evicted += 1
            files = sorted(self.files.values(), key=lambda f: f.created)
            size = sum(len(f.data) for f in files)
            for n, stored in enumerate(files):
                if (
                    len(files) - n > keep.max_files
                    or size > keep.max_file_bytes
                    or now - stored.created > keep.file_ttl
                ):
                    self.files.pop(stored.name, None)
                    size -= len(stored.data)
                    evicted += 1
            evicted += self._sweep_uploads(now)
        if evicted >= 100:
            _give_memory_back()

    def _sweep_uploads(self, now: float) -> int:
        """Drop abandoned upload sessions (past their time, or the oldest past the cap); how many."""
        keep = self.retention
        sessions = sorted(self.uploads.items(), key=lambda item: item[1].started)
        dropped = 0
        for n, (token, upload) in enumerate(sessions):
            if len(sessions) - n > keep.max_uploads or now - upload.started > keep.upload_ttl:
                self.uploads.pop(token, None)
                dropped += 1
        return dropped

    def get(self, interaction_id: str) -> Record | None:
        self.sweep()
        record = self.records.get(interaction_id)
        if record is None:
            return None
        if not record.stored and record.finished:
            return None
        return record

    def discard_unstored(self, record: Record) -> None:
        if not record.stored:
            with self.lock:
                self.records.pop(record.id, None)

    def resolve_file(self, uri: str) -> StoredFile | None:
        marker = uri.rfind("files/")
        return self.files.get(uri[marker:]) if marker >= 0 else None

    def remember_signed_calls(self, signed: dict[str, str], keep: int = 10_000) -> None:
        with self.lock:
            self.signed_calls.update(signed)
            while len(self.signed_calls) > keep:  # the oldest go first
                self.signed_calls.pop(next(iter(self.signed_calls)))

    def issue_continuation(self, record: Record) -> str:
        token = "ct_" + secrets.token_hex(12)
        with self.lock:
            self.continuations[token] = record.id
        return token

    def take_continuation(self, token: str) -> Record | None:
        """The interaction that issued ``token`` (a token continues one answer once)."""
        with self.lock:
            owner = self.continuations.pop(token, None)
        return self.get(owner) if owner else None

    def take_failure(self, spec: str) -> tuple[int, str | None] | None:
        """``X-Scripted-Fail: STATUS[=CODE][:COUNT[:TAG]]`` fails the next COUNT requests that carry it
        (default 1) with that HTTP status and error code (default: the status's documented code); a TAG
        gives a caller a budget of its own. The budget starts again after a request passes, unless the spec
        ends in ``:once`` (a storm that ends for good: every later request passes)."""
        status_text, _, rest = spec.partition(":")
        status_text, _, code = status_text.partition("=")
        count_text = rest.split(":", 1)[0]
        try:
            status, count = int(status_text), int(count_text or 1)
        except ValueError:
            return None
        with self.lock:
            left = self.fail_budget.get(spec, count)
            if left <= 0:
                if not spec.endswith(":once"):
                    self.fail_budget.pop(spec, None)
                return None
            self.fail_budget[spec] = left - 1
        return status, code or None


def _give_memory_back() -> None:
    """After a large eviction, hand freed heap pages back to the system (glibc keeps them otherwise)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    if trim is not None:
        trim(0)
