"""The local Interactions-compatible server: a Starlette app over the store and an engine."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..models import MODELS_ENV, known_ids, output_limit
from .engines.base import Engine, EngineRequest
from .engines.scripted import failing_status
from .engines.writer import StepWriter
from .file_search import FileSearchStores
from .guard import BODY_SECONDS
from .policy import Policy
from .store import Cancelled, Record, Retention, Store, StoredFile, Upload, event_position, new_id
from .wire import (
    LegacyTranslator,
    RequestError,
    check_turn,
    code_for,
    int_param,
    legacy_interaction,
    normalize_input,
    parse_create,
    signed_calls_of,
    sse_frame,
    wants_legacy,
)
from .workers import Workers

log = logging.getLogger("gemini_magics.local")

VERSIONS = frozenset({"v1", "v1beta", "v1alpha"})
MAX_BODY_BYTES = 20 * 1024 * 1024
LOG_BODY_BYTES = 256 * 1024
LOG_STRING_CHARS = 4096
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
ABANDON_GRACE_SECONDS = 2.0
VIDEO_PROCESSING_SECONDS = 0.5
Handler = Callable[[Request], Awaitable[Response]]


STALL_SECONDS = 600.0
SCRIPTED_NUMBERS = ("X-Scripted-Deltas", "X-Scripted-Delay-Ms", "X-Scripted-Cut-After", "X-Scripted-Stall-After",
                    "X-Scripted-Open-Delay-Ms", "X-Scripted-Queued-Ms", "X-Scripted-Continuation")  # fmt: skip


@dataclass(frozen=True)
class StreamFaults:
    """The scripted faults of one stream: cut the connection (``X-Scripted-Cut-After: N``) or go silent
    (``X-Scripted-Stall-After: N``) after N events; send an error as a bare JSON line, not an SSE event,
    and hang up (``X-Scripted-Refusal: bare``, as the API has sent refusals: js-genai#1973)."""

    cut_after: int | None = None
    stall_after: int | None = None
    bare_errors: bool = False

    @classmethod
    def of(cls, request: Request) -> StreamFaults:
        cut, stall = (
            request.headers.get("x-scripted-cut-after"),
            request.headers.get("x-scripted-stall-after"),
        )
        return cls(int_param(cut, "X-Scripted-Cut-After", 0) if cut else None,
                   int_param(stall, "X-Scripted-Stall-After", 0) if stall else None,
                   request.headers.get("x-scripted-refusal") == "bare")  # fmt: skip


NO_FAULTS = StreamFaults()


class _Cut(Exception):
    """Raised inside a stream body to drop the connection on purpose (``X-Scripted-Cut-After``)."""


class _QuietCuts(logging.Filter):
    """Deliberate cuts are not server errors: keep them out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _Cut)


logging.getLogger("uvicorn.error").addFilter(_QuietCuts())


_NOT_JSON = object()


def _body_json(request: Request) -> Any:
    """The body read by the prelude, as JSON (None when empty) or ``_NOT_JSON``; parsed once, then cached."""
    if not hasattr(request.state, "json"):
        body: bytes = request.state.body
        try:
            request.state.json = json.loads(body) if body else None
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested past any sane depth
            request.state.json = _NOT_JSON
    return request.state.json


async def _read_body(request: Request) -> bytes:
    """The body, refused (413) as soon as it passes the limit: an over-size upload is never held whole;
    and within ``BODY_SECONDS`` (408), so a body sent a byte at a time cannot hold the connection."""
    body = bytearray()

    async def read() -> None:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_BODY_BYTES:
                raise RequestError(413, "invalid_request", f"request body over {MAX_BODY_BYTES} bytes")

    try:
        await asyncio.wait_for(read(), BODY_SECONDS)
    except asyncio.TimeoutError:
        raise RequestError(408, "deadline_exceeded", f"request body not complete within {BODY_SECONDS:g} s") from None
    return bytes(body)


def _host_name(host: str) -> str:
    """The name part of a Host header: ``[::1]:80`` → ``::1``, ``Localhost:8080`` → ``localhost``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


_CREDENTIAL_HEADERS = frozenset({b"x-goog-api-key", b"authorization"})


class RequestLog(deque[dict[str, Any]]):
    """The latest requests, bounded in count and in bytes: a body over ``LOG_BODY_BYTES`` keeps its shape,
    its long strings (inline media) replaced by a summary, so a run of big uploads never piles up."""

    def __init__(self, max_entries: int = 1000, max_bytes: int = 32 * 1024 * 1024) -> None:
        super().__init__(maxlen=max_entries)
        self.max_bytes = max_bytes
        self._sizes: deque[int] = deque(maxlen=max_entries)
        self._total = 0
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any], size: int) -> None:
        if size > LOG_BODY_BYTES:
            entry["json"] = _summarized(entry["json"])
            size = len(json.dumps(entry["json"], default=str))
        with self._lock:
            if len(self) == self.maxlen:
                self._total -= self._sizes[0]
            self.append(entry)
            self._sizes.append(size)
            self._total += size
            while self._total > self.max_bytes and len(self) > 1:
                self.popleft()
                self._total -= self._sizes.popleft()

    def clear(self) -> None:
        with self._lock:
            super().clear()
            self._sizes.clear()
            self._total = 0


def _summarized(value: Any) -> Any:
    if isinstance(value, str) and len(value) > LOG_STRING_CHARS:
        return f"<{len(value)} characters, not kept>"
    if isinstance(value, dict):
        return {k: _summarized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_summarized(v) for v in value]
    return value


class LocalAPI:
    """Holds the state one server instance needs; ``app`` is the ASGI application."""

    def __init__(
        self,
        engine: Engine,
        *,
        api_key: str | None = None,
        schema: str | None = None,
        allowed_hosts: frozenset[str] = frozenset(),
        allowed_origins: frozenset[str] = frozenset(),
        retention: Retention | None = None,
        mcp_hosts: frozenset[str] = frozenset(),
        policy: Policy | None = None,
        models: Iterable[str] = (),
    ) -> None:
        self.engine = engine
        self.policy = policy or Policy()
        """What the stand-ins may do on this machine; the embedded server's parent changes it."""
        self.mcp_hosts = frozenset(h.lower() for h in mcp_hosts)
        """Hosts besides loopback that ``mcp_server`` tools may make this server dial."""
        self.api_key = api_key
        self.schema = schema
        self.allowed_hosts = LOOPBACK_NAMES | {h.strip("[]").lower() for h in allowed_hosts}
        """Host names a request may address: loopback, plus what the server binds (DNS rebinding defence)."""
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in allowed_origins)
        """Browser origins allowed to call (none by default: pages cannot drive the server)."""
        self.store = Store(retention or Retention())
        self.requests = RequestLog()
        """A log of received requests (never the key), so tests can check what reached the server."""
        self._workers = Workers()
        self.models = known_ids(models)
        """Model and agent ids answered for; any other gets the API's 404 ``model_not_found``."""
        from .batches import BatchRunner

        self.batches = BatchRunner(engine, self.store)
        self.file_stores = FileSearchStores()
        """File search stores: imported files' passages, indexed with FTS5 (the ``file_search`` tool)."""
        self.creates = 0
        """Interactions asked for so far (the log above keeps only the latest requests)."""
        r = self._route
        self.app = Starlette(routes=[
            Route("/", r(self.index), methods=["GET"]),
            Route("/{version}/interactions", r(self.create, json=True), methods=["POST"]),
            Route("/{version}/interactions/{iid}", r(self.get), methods=["GET"]),
            Route("/{version}/interactions/{iid}", r(self.delete), methods=["DELETE"]),
            Route("/{version}/interactions/{iid}/cancel", r(self.cancel, json=True), methods=["POST"]),
            Route("/upload/{version}/files", r(self.upload_start, json=True), methods=["POST"]),
            # an upload session is its own credential: an unguessable token, valid for that upload only
            Route("/upload/{version}/sessions/{token}", r(self.upload_chunk, auth=False), methods=["POST"]),
            Route("/{version}/files", r(self.list_files), methods=["GET"]),
            Route("/{version}/files/{fid}", r(self.get_file), methods=["GET"]),
            Route("/{version}/files/{fid}", r(self.delete_file), methods=["DELETE"]),
            Route("/download/{version}/files/{fid}", r(self.get_file), methods=["GET"]),
            Route("/{version}/models/{model}", r(self.batch_create, json=True), methods=["POST"]),
            Route("/{version}/batches", r(self.batch_list), methods=["GET"]),
            Route("/{version}/batches/{bid}", r(self.batch_get), methods=["GET"]),
            Route("/{version}/batches/{bid}", r(self.batch_cancel), methods=["POST"]),
            Route("/{version}/batches/{bid}", r(self.batch_delete), methods=["DELETE"]),
            Route("/{version}/fileSearchStores", r(self.store_create, json=True), methods=["POST"]),
            Route("/{version}/fileSearchStores/{sid}", r(self.store_get), methods=["GET"]),
            Route("/{version}/fileSearchStores/{sid}", r(self.store_import, json=True), methods=["POST"]),
            Route("/{version}/fileSearchStores/{sid}", r(self.store_delete), methods=["DELETE"]),
        ])  # fmt: skip

    # -- request prelude: version, auth, size, scripted failures, logging ----------------------------

    def _route(self, handler: Handler, *, auth: bool = True, json: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                self._check_caller(request, auth=auth, json=json)
                request.state.body = await _read_body(request)
                self._log(request)
                self._scripted_failure(request)
                return await handler(request)
            except RequestError as exc:
                return error_response(exc.status, exc.code, exc.message, exc.headers)

        return endpoint

    def _check_caller(self, request: Request, *, auth: bool, json: bool) -> None:
        """Who may call: a loopback Host, no foreign browser Origin, the key, and JSON where JSON is due."""
        host = _host_name(request.headers.get("host", ""))
        if host not in self.allowed_hosts:
            raise RequestError(
                403,
                "permission_denied",
                f"Host {host!r} is not allowed: address the server by a loopback name",
            )
        origin = request.headers.get("origin")
        if origin is not None and origin.rstrip("/").lower() not in self.allowed_origins:
            raise RequestError(
                403,
                "permission_denied",
                f"Origin {origin!r} is not allowed (gemini-magics serve --allow-origin)",
            )
        version = request.path_params.get("version")
        if version is not None and version not in VERSIONS:
            raise RequestError(
                404, "not_found", f"unknown API version {version!r}: use v1, v1beta or v1alpha"
            )
        if auth and self.api_key is not None:
            given = request.headers.get("x-goog-api-key") or request.query_params.get("key")
            if not given or not secrets.compare_digest(given.encode(), self.api_key.encode()):
                raise RequestError(401, "authentication", "missing or invalid API key (x-goog-api-key)")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise RequestError(413, "invalid_request", f"request body over {MAX_BODY_BYTES} bytes")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if json and content_type != "application/json":
            raise RequestError(
                415,
                "invalid_request",
                f"this route takes Content-Type: application/json, not {content_type or 'none'!r}",
            )

    def _scripted_failure(self, request: Request) -> None:
        failing = request.headers.get("x-scripted-fail")
        taken = self.store.take_failure(failing) if failing else None
        if taken is not None:
            status, code = taken
            headers = {"Retry-After": "1", "retry-after-ms": "20"} if status in (429, 503) else None
            raise RequestError(status, code or code_for(status), f"scripted failure ({failing})", headers)

    def _log(self, request: Request) -> None:
        parsed = None
        if request.headers.get("content-type", "").startswith("application/json"):
            parsed = _body_json(request)
            parsed = None if parsed is _NOT_JSON else parsed
        scope = request.scope  # (read raw: starlette's Headers and URL objects cost a tenth of a request's CPU)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k not in _CREDENTIAL_HEADERS}
        query = {k: v for k, v in request.query_params.items() if k != "key"} if scope["query_string"] else {}  # ?key= too
        self.requests.add({"method": request.method, "path": scope["path"], "query": query,
                           "headers": headers, "json": parsed}, len(request.state.body))  # fmt: skip

    @staticmethod
    def json_body(request: Request) -> Any:
        """The body as JSON (parsed at most once per request); 400 if it is not JSON."""
        parsed = _body_json(request)
        if parsed is _NOT_JSON:
            raise RequestError(400, "invalid_request", "the request body is not valid JSON")
        return parsed

    async def index(self, request: Request) -> Response:
        return JSONResponse(
            {"server": "gemini-magics local Interactions API", "engine": self.engine.description}
        )

    # -- interactions -------------------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        params = parse_create(self.json_body(request))
        self._check_model(params.model or params.agent, params.generation_config)
        for header in SCRIPTED_NUMBERS:  # checked before anything runs: a bad one is a 400, not a failed run
            int_param(request.headers.get(header), header, 0)
        self.creates += 1
        status = failing_status(params.input) if self.engine.name == "scripted" else None
        if status is not None:
            raise RequestError(status, code_for(status), f"scripted failure for this input ([fail {status}])")
        body = params.model_dump(exclude_none=True)
        continued = self._continued(params)
        history = self._history(params.previous_interaction_id, continued)
        check_turn(history, normalize_input(params.input), self.store.signed_calls)
        record = Record(
            id=new_id(), request=body, input_steps=normalize_input(params.input), history=history,
            stored=params.store, background=params.background, served_by=self.engine.served_by,
            watched=bool(params.stream or params.background or params.store),
        )  # fmt: skip
        self.store.add(record)
        queued = int_param(request.headers.get("x-scripted-queued-ms"), "X-Scripted-Queued-Ms", 0)
        if queued:  # waits its turn first, as a busy API (or a flex request) starts: queued, then in_progress
            record.status = "queued"
        record.emit({"event_type": "interaction.created", "interaction": record.summary()})
        record.emit({"event_type": "interaction.status_update", "interaction_id": record.id, "status": record.status})
        self._start(record, request, continued)
        legacy = wants_legacy(request.headers, self.schema)
        if params.stream:
            opening = int_param(request.headers.get("x-scripted-open-delay-ms"), "X-Scripted-Open-Delay-Ms", 0)
            if opening:  # a stream slow to open (its headers come late): what a Stop can race
                await asyncio.sleep(opening / 1000)
            return self._sse(record, legacy=legacy, after=(0, 0), faults=StreamFaults.of(request))
        if params.background:
            return self._json(record.resource(), legacy)
        while not record.finished:
            await record.wait_finished()
        if record.owed:
            await asyncio.sleep(record.owed)
        self.store.discard_unstored(record)
        return self._json(record.resource(), legacy)

    def _history(self, previous_id: str | None, continued: Any) -> list[dict[str, Any]]:
        """The steps a create continues: its previous interaction's chain (which must be stored and done)."""
        if not previous_id:
            return []
        previous = self.store.get(previous_id)
        if previous is None or not previous.stored:
            raise RequestError(404, "not_found", f"previous interaction {previous_id} not found")
        if not previous.finished:
            raise RequestError(400, "failed_precondition", f"previous interaction {previous.id} is still {previous.status}")
        if previous.status not in ("completed", "requires_action", "incomplete") and continued is None:
            raise RequestError(400, "failed_precondition",
                               f"previous interaction {previous.id} ended {previous.status}; continue from a completed one")  # fmt: skip
        return previous.chain()

    def _check_model(self, name: str | None, config: Any = None) -> None:
        """What the API refuses before anything runs: an unknown id (404), more output than the model gives."""
        if name is None:
            return
        bare = name.removeprefix("models/")
        if bare not in self.models and not bare.startswith("local:"):
            raise RequestError(404, "model_not_found", f"models/{bare} is not found, or is not supported for "
                               f"this API (the local server knows {len(self.models)} ids; {MODELS_ENV} adds more)")  # fmt: skip
        asked, limit = getattr(config, "max_output_tokens", None), output_limit(bare)
        if asked and limit and asked > limit:
            raise RequestError(400, "invalid_request",
                               f"max_output_tokens {asked} is over {bare}'s limit of {limit} output tokens")  # fmt: skip

    def _continued(self, params: Any) -> tuple[str, int] | None:
        """What a create with a ``continuation_token`` continues: the text its issuer left for this hop."""
        token = params.continuation_token
        if not token:
            return None
        owner = self.store.take_continuation(token)
        if owner is None or owner.continuation is None:
            raise RequestError(400, "invalid_request", "continuation_token is unknown or was used already")
        if params.previous_interaction_id and params.previous_interaction_id != owner.id:
            raise RequestError(400, "invalid_request", f"continuation_token was issued by {owner.id}, "
                               f"not by previous_interaction_id {params.previous_interaction_id}")  # fmt: skip
        return owner.continuation

    def _start(self, record: Record, request: Request, continued: tuple[str, int] | None = None) -> None:
        engine_request = EngineRequest(
            continuation=continued,
            model=str(record.request.get("model") or record.request.get("agent")),
            history=record.history + record.input_steps,
            system_instruction=record.request.get("system_instruction"),
            tools=record.request.get("tools") or [],
            generation_config=record.request.get("generation_config") or {},
            response_format=record.request.get("response_format"),
            response_modalities=record.request.get("response_modalities") or [],
            headers={k.lower(): v for k, v in request.headers.items()},
            resolve_file=self.store.resolve_file,
            search_files=self.file_stores.search,
            mcp_hosts=self.mcp_hosts,
            policy=self.policy,
            is_agent=bool(record.request.get("agent")),
            agent_config=record.request.get("agent_config") or {},
        )
        if not record.watched and self.engine.quick(engine_request):
            # a worker thread would cost more than the run: its GIL hand-off adds milliseconds under load
            self._run(record, engine_request)
        else:
            self._workers.submit(lambda: self._run(record, engine_request))

    def _run(self, record: Record, engine_request: EngineRequest) -> None:
        try:
            if record.status == "queued":
                StepWriter(record).pace(int(engine_request.headers.get("x-scripted-queued-ms", "0")) / 1000)
                record.status = "in_progress"
                record.emit({"event_type": "interaction.status_update", "interaction_id": record.id, "status": "in_progress"})
            status = self.engine.run(engine_request, record)
            if status == "requires_continuation":
                record.continuation_token = self.store.issue_continuation(record)
            self.store.remember_signed_calls(signed_calls_of(record.steps))
        except Cancelled:
            status = "cancelled"
        except Exception as exc:  # the engine's failure becomes the interaction's, not the server's
            log.exception("engine failed on %s", record.id)
            record.errors.append({"code": "api_error", "message": f"{type(exc).__name__}: {exc}"})
            record.emit(
                {"event_type": "error", "error": {"code": "api_error", "message": f"engine error: {exc}"}}
            )
            status = "failed"
        record.finish(status)

    def _json(self, resource: dict[str, Any], legacy: bool) -> JSONResponse:
        return JSONResponse(legacy_interaction(resource) if legacy else resource)

    def _sse(
        self, record: Record, *, legacy: bool, after: tuple[int, int], faults: StreamFaults = NO_FAULTS
    ) -> StreamingResponse:
        return StreamingResponse(
            self._events(record, legacy=legacy, after=after, faults=faults),
            media_type="text/event-stream", headers={"Cache-Control": "no-cache"},
        )  # fmt: skip

    async def _events(
        self, record: Record, *, legacy: bool, after: tuple[int, int], faults: StreamFaults
    ) -> AsyncIterator[bytes]:
        cut_after, stall_after = faults.cut_after, faults.stall_after
        translator = LegacyTranslator() if legacy else None
        seen = sent = 0
        record.readers += 1
        completed = False
        try:
            while True:
                fresh = record.events[seen:]
                frames: list[bytes] = []  # one write per wake-up: fewer context switches under load
                for event in fresh:
                    seen += 1
                    for out in translator.translate(event) if translator else (event,):
                        if event_position(out.get("event_id")) <= after:
                            continue
                        if faults.bare_errors and out.get("event_type") == "error":
                            yield b"".join(frames) + json.dumps({"error": out["error"]}).encode() + b"\n"
                            return
                        frames.append(sse_frame(out))
                        sent += 1
                        if cut_after is not None and sent >= cut_after:
                            yield b"".join(frames)
                            raise _Cut()
                        if stall_after is not None and sent >= stall_after:
                            # X-Scripted-Stall-After: the connection stays open and says nothing more
                            # (a stalled resume), until the client gives up on it
                            yield b"".join(frames)
                            await asyncio.sleep(STALL_SECONDS)
                            return
                if frames:
                    yield b"".join(frames)
                if record.finished and seen >= len(record.events):
                    completed = True
                    return
                await record.wait_for_events(seen)
        finally:
            record.readers -= 1
            if completed:
                self.store.discard_unstored(record)
            elif not record.background and not record.finished:
                asyncio.get_running_loop().call_later(ABANDON_GRACE_SECONDS, self._abandon_if_unread, record)

    def _abandon_if_unread(self, record: Record) -> None:
        # the client stopped reading a foreground stream and did not resume it: stop the engine
        if record.readers == 0 and not record.finished:
            record.cancel_requested.set()

    def _record(self, request: Request) -> Record:
        iid = request.path_params["iid"]
        record = self.store.get(iid)
        if record is None or not record.stored:
            raise RequestError(404, "not_found", f"interaction {iid} not found")
        return record

    async def get(self, request: Request) -> Response:
        record = self._record(request)
        legacy = wants_legacy(request.headers, self.schema)
        if request.query_params.get("stream") == "true":
            after = event_position(request.query_params.get("last_event_id"))
            return self._sse(record, legacy=legacy, after=after, faults=StreamFaults.of(request))
        include_input = request.query_params.get("include_input") == "true"
        return self._json(record.resource(include_input=include_input), legacy)

    async def cancel(self, request: Request) -> Response:
        record = self._record(request)
        if record.finished:
            raise RequestError(
                400,
                "failed_precondition",
                f"interaction {record.id} already {record.status}; nothing to cancel",
            )
        record.cancel_requested.set()
        await asyncio.get_running_loop().run_in_executor(None, record.done.wait, 10.0)
        return self._json(record.resource(), wants_legacy(request.headers, self.schema))

    async def delete(self, request: Request) -> Response:
        record = self._record(request)
        record.cancel_requested.set()
        with self.store.lock:
            self.store.records.pop(record.id, None)
        return JSONResponse({})

    # -- files --------------------------------------------------------------------------------------

    async def upload_start(self, request: Request) -> Response:
        if (
            request.headers.get("x-goog-upload-protocol") != "resumable"
            or request.headers.get("x-goog-upload-command") != "start"
        ):
            raise RequestError(
                400,
                "invalid_request",
                "start an upload with X-Goog-Upload-Protocol: resumable and X-Goog-Upload-Command: start",
            )
        body = self.json_body(request) or {}
        meta = body.get("file", {}) if isinstance(body, dict) else {}
        mime = (
            request.headers.get("x-goog-upload-header-content-type")
            or meta.get("mime_type")
            or meta.get("mimeType")
        )
        wanted = meta.get("name")
        if wanted and (wanted in self.store.files or any(u.meta.get("name") == wanted for u in self.store.uploads.values())):
            raise RequestError(409, "already_exists", f"a file named {wanted} exists already: pick another name")
        total = request.headers.get("x-goog-upload-header-content-length")
        token = secrets.token_urlsafe(16)
        self.store.uploads[token] = Upload(
            meta=meta, mime_type=mime or "application/octet-stream",
            total=int_param(total, "X-Goog-Upload-Header-Content-Length", 0) if total else None
        )
        version = request.path_params["version"]
        url = f"{str(request.base_url).rstrip('/')}/upload/{version}/sessions/{token}"
        return JSONResponse({}, headers={"x-goog-upload-url": url, "x-goog-upload-status": "active",
                                         "x-goog-upload-chunk-granularity": "8388608"})  # fmt: skip

    async def upload_chunk(self, request: Request) -> Response:
        upload = self.store.uploads.get(request.path_params["token"])
        if upload is None:
            raise RequestError(404, "not_found", "unknown or finished upload session")
        command = request.headers.get("x-goog-upload-command", "")
        if command.strip() == "query":  # resumable: how much is held, so a broken upload goes on from there
            return Response(headers={"x-goog-upload-status": "active", "x-goog-upload-size-received": str(len(upload.data))})
        offset = int_param(request.headers.get("x-goog-upload-offset"), "X-Goog-Upload-Offset", 0)
        if offset != len(upload.data):
            raise RequestError(
                400,
                "invalid_request",
                f"upload offset {offset} but {len(upload.data)} bytes received so far",
            )
        upload.data.extend(request.state.body)
        if "finalize" not in command:
            return Response(headers={"x-goog-upload-status": "active"})
        del self.store.uploads[request.path_params["token"]]
        if upload.total is not None and upload.total != len(upload.data):
            raise RequestError(
                400, "invalid_request", f"declared {upload.total} bytes, received {len(upload.data)}"
            )
        name = upload.meta.get("name") or f"files/{secrets.token_hex(6)}"
        if name in self.store.files:
            raise RequestError(409, "already_exists", f"a file named {name} exists already: pick another name")
        stored = StoredFile(name=name, display_name=upload.meta.get("display_name") or upload.meta.get("displayName"),
                            mime_type=upload.mime_type, data=bytes(upload.data),
                            ready_at=time.monotonic() + (VIDEO_PROCESSING_SECONDS if upload.mime_type.startswith("video/") else 0))  # fmt: skip
        self.store.add_file(stored)
        return JSONResponse(
            {"file": self._file_resource(stored, request)}, headers={"x-goog-upload-status": "final"}
        )

    def _file_resource(self, stored: StoredFile, request: Request) -> dict[str, Any]:
        return stored.resource(
            str(request.base_url).rstrip("/"), request.path_params.get("version", "v1beta")
        )

    def _file(self, fid: str) -> StoredFile:
        self.store.sweep()
        stored = self.store.files.get(f"files/{fid}")
        if stored is None:
            raise RequestError(404, "not_found", f"file files/{fid} not found")
        return stored

    async def get_file(self, request: Request) -> Response:
        fid = request.path_params["fid"]
        if fid.endswith(":download"):
            stored = self._file(fid.removesuffix(":download"))
            return Response(stored.data, media_type=stored.mime_type)
        return JSONResponse(self._file_resource(self._file(fid), request))

    # -- file search stores -----------------------------------------------------------------------

    async def store_create(self, request: Request) -> Response:
        body = self.json_body(request)
        name = (body.get("displayName") or body.get("display_name")) if isinstance(body, dict) else None
        return JSONResponse(self.file_stores.create(name))

    async def store_get(self, request: Request) -> Response:
        return JSONResponse(self.file_stores.get(request.path_params["sid"]))

    async def store_delete(self, request: Request) -> Response:
        self.file_stores.delete(request.path_params["sid"])
        return JSONResponse({})

    async def store_import(self, request: Request) -> Response:
        sid, _, method = request.path_params["sid"].partition(":")
        if method != "importFile":
            raise RequestError(404, "not_found", f"fileSearchStores/{sid}:{method or '?'} is not served here")
        body = self.json_body(request)
        file_name = (body.get("fileName") or body.get("file_name")) if isinstance(body, dict) else None
        if not isinstance(file_name, str):
            raise RequestError(400, "invalid_request", "importFile needs fileName (an uploaded file: files/…)")
        stored = self._file(file_name.removeprefix("files/"))
        return JSONResponse(self.file_stores.import_file(sid, stored.name, stored.display_name, stored.mime_type, stored.data))

    # -- the Batch API ----------------------------------------------------------------------------

    async def batch_create(self, request: Request) -> Response:
        model, _, method = request.path_params["model"].partition(":")
        if method != "batchGenerateContent":
            raise RequestError(
                404,
                "not_found",
                f"models/{model}:{method or '?'} is not served here (only :batchGenerateContent)",
            )
        self._check_model(model)
        body = self.json_body(request)
        batch = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(batch, dict):
            raise RequestError(400, "invalid_request", "the body needs a batch object")
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("x-scripted-")}
        job = self.batches.create(model, batch, headers)
        return JSONResponse(job.resource())

    async def batch_get(self, request: Request) -> Response:
        return JSONResponse(self.batches.get(f"batches/{request.path_params['bid']}").resource())

    async def batch_list(self, request: Request) -> Response:
        self.batches.sweep()
        names = sorted(self.batches.jobs, key=lambda n: self.batches.jobs[n].created, reverse=True)
        size = max(1, min(int_param(request.query_params.get("pageSize"), "pageSize", 50), 100))
        start = int_param(request.query_params.get("pageToken"), "pageToken", 0)
        page = [
            self.batches.jobs[n].resource() for n in names[start : start + size] if n in self.batches.jobs
        ]
        listed: dict[str, Any] = {"operations": page}
        if start + size < len(names):
            listed["nextPageToken"] = str(start + size)
        return JSONResponse(listed)

    async def batch_cancel(self, request: Request) -> Response:
        bid, _, method = request.path_params["bid"].partition(":")
        if method != "cancel":
            raise RequestError(404, "not_found", f"batches/{bid}:{method or '?'} is not a method")
        job = self.batches.get(f"batches/{bid}")
        if job.state in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
            job.cancel.set()
        return JSONResponse({})

    async def batch_delete(self, request: Request) -> Response:
        self.batches.delete(f"batches/{request.path_params['bid']}")
        return JSONResponse({})

    async def list_files(self, request: Request) -> Response:
        self.store.sweep()
        names = sorted(self.store.files)
        size = max(1, min(int_param(request.query_params.get("pageSize"), "pageSize", 100), 100))
        start = int_param(request.query_params.get("pageToken"), "pageToken", 0)
        page = names[start : start + size]
        body: dict[str, Any] = {"files": [self._file_resource(self.store.files[n], request) for n in page]}
        if start + size < len(names):
            body["nextPageToken"] = str(start + size)
        return JSONResponse(body)

    async def delete_file(self, request: Request) -> Response:
        self._file(request.path_params["fid"])
        self.store.files.pop(f"files/{request.path_params['fid']}", None)
        return JSONResponse({})
