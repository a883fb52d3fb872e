"""Server-side state: interaction records (with their event logs) and uploaded files."""

from __future__ import annotations

import asyncio
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id(prefix: str = "v1_") -> str:
    return prefix + secrets.token_hex(12)


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
    events: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    readers: int = 0
    served_by: str = ""
    incomplete_details: dict[str, Any] | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=set)
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
        if self.served_by:
            out["served_by"] = self.served_by
        if self.incomplete_details:
            out["incomplete_details"] = dict(self.incomplete_details)
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
        for key in ("system_instruction", "tools", "generation_config", "response_format", "response_mime_type",
                    "response_modalities", "previous_interaction_id", "agent_config", "store", "background"):  # fmt: skip
            if self.request.get(key) is not None:
                out[key] = self.request[key]
        return out

    def chain(self) -> list[dict[str, Any]]:
        """Everything the next interaction continuing from this one sees."""
        return self.history + self.input_steps + self.steps

    # -- the event log (written by the run thread, read by any number of async streams) ----------

    def emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            event["event_id"] = f"{self.id}:{len(self.events) + 1}"
            self.events.append(event)
            self.updated = now_iso()
            waiters = list(self._waiters)
        for loop, flag in waiters:
            loop.call_soon_threadsafe(flag.set)

    def finish(self, status: str) -> None:
        self.status = status
        self.emit({"event_type": "interaction.completed", "interaction": self.summary()})
        self.done.set()
        with self._lock:
            waiters = list(self._waiters)
        for loop, flag in waiters:
            loop.call_soon_threadsafe(flag.set)

    async def wait_for_events(self, seen: int, timeout: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        flag = asyncio.Event()
        with self._lock:
            if len(self.events) > seen or self.finished:
                return
            self._waiters.add((loop, flag))
        try:
            await asyncio.wait_for(flag.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard((loop, flag))

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

    def add_usage(self, *, input_tokens: int = 0, output_tokens: int = 0, thought_tokens: int = 0) -> None:
        u = self.usage
        u["total_input_tokens"] = u.get("total_input_tokens", 0) + input_tokens
        u["total_output_tokens"] = u.get("total_output_tokens", 0) + output_tokens
        if thought_tokens:
            u["total_thought_tokens"] = u.get("total_thought_tokens", 0) + thought_tokens
        u["total_tokens"] = (
            u["total_input_tokens"] + u["total_output_tokens"] + u.get("total_thought_tokens", 0)
        )


@dataclass
class StoredFile:
    name: str
    display_name: str | None
    mime_type: str
    data: bytes
    create_time: str = field(default_factory=now_iso)

    def resource(self, base_url: str, version: str) -> dict[str, Any]:
        import base64
        import hashlib

        return {
            "name": self.name, "displayName": self.display_name, "mimeType": self.mime_type,
            "sizeBytes": str(len(self.data)), "createTime": self.create_time, "updateTime": self.create_time,
            "sha256Hash": base64.b64encode(hashlib.sha256(self.data).digest()).decode(),
            "uri": f"{base_url}/{version}/{self.name}", "state": "ACTIVE", "source": "UPLOADED",
        }  # fmt: skip


@dataclass
class Upload:
    meta: dict[str, Any]
    mime_type: str
    total: int | None
    data: bytearray = field(default_factory=bytearray)


class Store:
    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.files: dict[str, StoredFile] = {}
        self.uploads: dict[str, Upload] = {}
        self.fail_budget: dict[str, int] = {}
        self.lock = threading.Lock()

    def add(self, record: Record) -> None:
        with self.lock:
            self.records[record.id] = record

    def get(self, interaction_id: str) -> Record | None:
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

    def take_failure(self, spec: str) -> int | None:
        """``X-Scripted-Fail: STATUS[:COUNT]`` fails the next COUNT requests that carry it (default 1)."""
        status_text, _, count_text = spec.partition(":")
        try:
            status, count = int(status_text), int(count_text or 1)
        except ValueError:
            return None
        with self.lock:
            left = self.fail_budget.get(spec, count)
            if left <= 0:
                self.fail_budget.pop(spec, None)
                return None
            self.fail_budget[spec] = left - 1
        return status
