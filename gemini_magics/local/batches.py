"""The Gemini Batch API on the local server: jobs of ``GenerateContentRequest``s run on its engine.

``POST /v1beta/models/{model}:batchGenerateContent`` takes inline requests (``batch.inputConfig.requests``,
each with optional ``metadata``) or an uploaded JSONL file (``batch.inputConfig.fileName``, one
``{"key": …, "request": …}`` per line), and answers a long-running operation whose ``metadata`` is the
``GenerateContentBatch``: state, ``batchStats`` and, when done, ``output`` (inline responses, or a
``responsesFile`` of ``{"key": …, "response": …}`` / ``{"key": …, "error": …}`` lines). Jobs run in the
background on a few worker threads, so inline responses come back in completion order, as on the real
API at scale: callers must match them by key. Get, list, cancel and delete work as the real ones do.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._media import part_kind
from .store import Cancelled, Record, StoredFile, new_id, now_iso

if TYPE_CHECKING:
    from .engines.base import Engine

__all__ = ["BatchJob", "BatchRunner", "engine_request_of"]

WORKERS = 4
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
TERMINAL = ("BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED")
RPC_CODES = {400: (3, "INVALID_ARGUMENT"), 401: (16, "UNAUTHENTICATED"), 403: (7, "PERMISSION_DENIED"),
             404: (5, "NOT_FOUND"), 429: (8, "RESOURCE_EXHAUSTED"), 499: (1, "CANCELLED"), 500: (13, "INTERNAL"),
             501: (12, "UNIMPLEMENTED"), 503: (14, "UNAVAILABLE"), 504: (4, "DEADLINE_EXCEEDED")}  # fmt: skip
"""A failed request's ``error`` in a batch's results is a ``google.rpc.Status``: its code is a
``google.rpc.Code`` number, not an HTTP status."""
ENDINGS = {
    "failed": ("BATCH_STATE_FAILED", {"code": 13, "message": "the batch job failed before running its requests"}),
    "expired": ("BATCH_STATE_EXPIRED", {"code": 4, "message": "the batch job did not finish within 48 hours"}),
}
"""``X-Scripted-Batch-End: failed|expired``: how a job ends instead of running, as real jobs sometimes do."""


def rpc_error(http_status: int, message: str) -> dict[str, Any]:
    code, status = RPC_CODES.get(http_status, (2, "UNKNOWN"))
    return {"code": code, "message": message, "status": status}


@dataclass
class BatchJob:
    name: str
    model: str
    display_name: str | None
    entries: list[dict[str, Any]]
    """Inline: ``{"metadata": …, "request": GenerateContentRequest}`` in input order (a file job's lines are
    read from ``source`` as they run, never all parsed at once)."""
    from_file: bool
    source: bytes = b""
    """A file job's JSONL input."""
    count: int = 0
    """Requests in the job."""
    headers: dict[str, str] = field(default_factory=dict)
    state: str = "BATCH_STATE_PENDING"
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    ended: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    """Inline responses in completion order (not input order)."""
    output: bytearray = field(default_factory=bytearray)
    """A file job's result lines, in completion order."""
    answered: int = 0
    failed: int = 0
    output_file: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ended_at: float | None = None
    """When it ended (monotonic), for retention."""
    error: dict[str, Any] | None = None
    """Why a FAILED or EXPIRED job ended (a ``google.rpc.Status``)."""

    def resource(self) -> dict[str, Any]:
        """The job as the API shows it: an operation whose metadata is the GenerateContentBatch."""
        with self.lock:
            done = self.state in TERMINAL
            succeeded = self.answered - self.failed
            batch: dict[str, Any] = {
                "@type": BATCH_TYPE, "name": self.name, "model": f"models/{self.model}", "state": self.state,
                "createTime": self.created, "updateTime": self.updated,
                "batchStats": {"requestCount": str(self.count), "successfulRequestCount": str(succeeded),
                               "failedRequestCount": str(self.failed),
                               "pendingRequestCount": str(self.count - self.answered)},
            }  # fmt: skip
            if self.display_name:
                batch["displayName"] = self.display_name
            if self.ended:
                batch["endTime"] = self.ended
            if done and self.state == "BATCH_STATE_SUCCEEDED":
                batch["output"] = ({"responsesFile": self.output_file} if self.from_file
                                   else {"inlinedResponses": {"inlinedResponses": list(self.results)}})  # fmt: skip
        operation: dict[str, Any] = {"name": self.name, "metadata": batch, "done": done}
        if self.error is not None:
            operation["error"] = dict(self.error)
        elif done:
            operation["response"] = batch
        return operation


def engine_request_of(request: dict[str, Any], model: str, headers: dict[str, str]) -> Any:
    """A ``GenerateContentRequest`` as the engine's request (the Interactions API's steps)."""
    from .engines.base import EngineRequest

    history = []
    for content in request.get("contents") or []:
        blocks = [_block(part) for part in content.get("parts") or []]
        kind = "model_output" if content.get("role") == "model" else "user_input"
        history.append({"type": kind, "content": [b for b in blocks if b]})
    config = request.get("generationConfig") or request.get("generation_config") or {}
    generation = {ours: config[theirs] for ours, theirs in (("temperature", "temperature"), ("seed", "seed"),
                  ("max_output_tokens", "maxOutputTokens"), ("top_p", "topP")) if theirs in config}  # fmt: skip
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    response_format = {"type": "text", "mime_type": "application/json", "schema": schema} if schema else None
    system = request.get("systemInstruction") or request.get("system_instruction") or {}
    system_text = " ".join(p.get("text", "") for p in system.get("parts") or []) or None
    return EngineRequest(model=model, history=history, system_instruction=system_text,
                         generation_config=generation, response_format=response_format, headers=headers)  # fmt: skip


def _block(part: dict[str, Any]) -> dict[str, Any] | None:
    if "text" in part:
        return {"type": "text", "text": part["text"]}
    inline = part.get("inlineData") or part.get("inline_data")
    if inline:
        mime = inline.get("mimeType") or inline.get("mime_type") or "application/octet-stream"
        return {"type": part_kind(mime), "mime_type": mime, "data": inline.get("data")}
    data = part.get("fileData") or part.get("file_data")
    if data:
        mime = data.get("mimeType") or data.get("mime_type") or "application/octet-stream"
        return {
            "type": part_kind(mime),
            "mime_type": mime,
            "uri": data.get("fileUri") or data.get("file_uri"),
        }
    return None


def _lines(data: bytes) -> Any:
    """The non-blank lines of a JSONL file, as they are read."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line = data[start:end]
        start = end + 1
        if line.strip():
            yield line


def _entries(job: BatchJob) -> Any:
    """A job's entries in input order: inline ones as given, a file's parsed a line at a time (a line that
    is not JSON becomes an entry without a request, which fails alone)."""
    if not job.from_file:
        yield from job.entries
        return
    for line in _lines(job.source):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = {}
        yield entry if isinstance(entry, dict) else {}


class BatchRunner:
    """The server's batch jobs, and the threads that run them."""

    def __init__(self, engine: Engine, files: Any) -> None:
        self.engine = engine
        self.files = files
        """The server's :class:`Store` (input JSONL files are read from it, result files written to it)."""
        self.jobs: dict[str, BatchJob] = {}
        self._lock = threading.Lock()

    def create(self, model: str, batch: dict[str, Any], headers: dict[str, str]) -> BatchJob:
        from .wire import RequestError

        config = batch.get("inputConfig") or batch.get("input_config") or {}
        inline = (config.get("requests") or {}).get("requests")
        file_name = config.get("fileName") or config.get("file_name")
        if inline is None and not file_name:
            raise RequestError(
                400, "invalid_request", "batch.inputConfig needs requests.requests or fileName"
            )
        source = b""
        if file_name:
            stored = self.files.files.get(file_name)
            if stored is None:
                raise RequestError(404, "not_found", f"input file {file_name} not found")
            source = stored.data
            try:  # the first line is checked now; a later bad line fails alone, as on the real API
                first = next((line for line in _lines(source)), None)
                entries = [json.loads(first)] if first is not None else []
            except ValueError as exc:
                raise RequestError(400, "invalid_request", f"{file_name} is not JSONL: {exc}") from None
        else:
            entries = list(inline or [])
        if not entries or not all(
            isinstance(e, dict) and isinstance(e.get("request"), dict) for e in entries
        ):
            raise RequestError(400, "invalid_request", "every batch entry needs a request object")
        count = sum(1 for _ in _lines(source)) if file_name else len(entries)
        job = BatchJob(name=f"batches/{secrets.token_hex(8)}", model=model.removeprefix("models/"),
                       display_name=batch.get("displayName") or batch.get("display_name"),
                       entries=[] if file_name else entries, from_file=bool(file_name), source=source, count=count,
                       headers=headers)  # fmt: skip
        self.sweep()
        with self._lock:
            self.jobs[job.name] = job
        threading.Thread(target=self._run, args=(job,), daemon=True, name=f"run-{job.name}").start()
        return job

    def sweep(self, now: float | None = None) -> None:
        """Forget finished jobs past the retention time, and the oldest past the cap, with their results
        files (running jobs stay)."""
        now = time.monotonic() if now is None else now
        keep = self.files.retention
        with self._lock:
            ended = sorted((j for j in self.jobs.values() if j.ended_at is not None), key=lambda j: j.ended_at or 0)
            for n, job in enumerate(ended):
                if len(ended) - n > keep.max_batches or now - (job.ended_at or now) > keep.batch_ttl:
                    self.jobs.pop(job.name, None)
                    if job.output_file:
                        self.files.files.pop(job.output_file, None)

    def get(self, name: str) -> BatchJob:
        from .wire import RequestError

        self.sweep()
        job = self.jobs.get(name)
        if job is None:
            raise RequestError(404, "not_found", f"batch {name} not found")
        return job

    def delete(self, name: str) -> None:
        job = self.get(name)
        job.cancel.set()
        with self._lock:
            self.jobs.pop(name, None)

    def _run(self, job: BatchJob) -> None:
        ending = ENDINGS.get(job.headers.get("x-scripted-batch-end", ""))
        with job.lock:
            job.state, job.updated = "BATCH_STATE_RUNNING", now_iso()
        if ending is not None:
            with job.lock:
                job.state, job.error = ending[0], dict(ending[1])
                job.ended = job.updated = now_iso()
                job.ended_at = time.monotonic()
            return
        # the workers pull the job's entries one at a time: a million requests are never all queued at once
        entries = _entries(job)
        take = threading.Lock()

        def work() -> None:
            while not job.cancel.is_set():
                with take:
                    entry = next(entries, None)
                if entry is None:
                    return
                self._one(job, entry)

        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix=f"{job.name}-") as pool:
            for _ in range(WORKERS):
                pool.submit(work)
        with job.lock:
            if job.cancel.is_set():
                job.state = "BATCH_STATE_CANCELLED"
            else:
                job.state = "BATCH_STATE_SUCCEEDED"
                if job.from_file:
                    job.output_file = self._write_results(job)
            job.ended = job.updated = now_iso()
            job.ended_at = time.monotonic()

    def _one(self, job: BatchJob, entry: dict[str, Any]) -> None:
        if job.cancel.is_set():
            return
        request = entry.get("request")
        answer = (self._answer(job, request) if isinstance(request, dict)
                  else {"error": rpc_error(400, "the line has no request object")})  # fmt: skip
        label = {"key": entry["key"]} if job.from_file and "key" in entry else {}
        if not job.from_file and "metadata" in entry:
            label = {"metadata": entry["metadata"]}
        line = (json.dumps({**label, **answer}, ensure_ascii=False) + "\n").encode() if job.from_file else b""
        with job.lock:
            if job.from_file:
                job.output += line
            else:
                job.results.append({**label, **answer})
            job.answered += 1
            job.failed += "error" in answer
            job.updated = now_iso()

    def _answer(self, job: BatchJob, request: dict[str, Any]) -> dict[str, Any]:
        """One ``GenerateContentResponse`` (or an error) for one request, from the engine."""
        from .engines.scripted import failing_status

        failing = failing_status(request.get("contents")) if self.engine.name == "scripted" else None
        if failing is not None:
            return {"error": rpc_error(failing, "scripted failure for this request")}
        record = Record(id=new_id(), request={}, input_steps=[], history=[], stored=False, background=True)
        try:
            status = self.engine.run(engine_request_of(request, job.model, job.headers), record)
        except Cancelled:
            return {"error": rpc_error(499, "cancelled")}
        except Exception as exc:  # one bad request fails alone, as on the real API
            return {"error": rpc_error(500, f"{type(exc).__name__}: {exc}")}
        parts = [{"text": block.get("text", "")} for step in record.steps if step.get("type") == "model_output"
                 for block in step.get("content", []) if block.get("type") == "text"]  # fmt: skip
        usage = record.usage
        return {"response": {
            "candidates": [{"content": {"role": "model", "parts": parts or [{"text": ""}]}, "index": 0,
                            "finishReason": "MAX_TOKENS" if status == "incomplete" else "STOP"}],
            "usageMetadata": {"promptTokenCount": usage.get("total_input_tokens", 0),
                              "candidatesTokenCount": usage.get("total_output_tokens", 0),
                              "totalTokenCount": usage.get("total_tokens", 0)},
            "modelVersion": job.model, "responseId": record.id,
        }}  # fmt: skip

    def _write_results(self, job: BatchJob) -> str:
        name = f"files/batch-{job.name.split('/')[-1]}-results"
        data, job.output, job.source = bytes(job.output), bytearray(), b""  # the input is done with
        self.files.add_file(StoredFile(name=name, display_name=f"{job.name} results", mime_type="application/jsonl",
                                       data=data, ready_at=time.monotonic()))  # fmt: skip
        return name
