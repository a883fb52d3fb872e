"""``--over NAME --batch``: the rows as Gemini Batch API jobs, for what outgrows live calls.

The rows are read, rendered and written a chunk at a time, so neither the input nor the requests are
ever all in memory: each row's interaction request becomes a ``GenerateContentRequest`` line of a JSONL
file spooled to disk (keyed by the row's cache key, so results are matched to rows by key, never by
order), and the files are cut where the API's limits require (2 GB a file) or
``InteractMagics.batch_job_rows`` says, one job each. Rows the row cache answers are not sent; identical
rows go once; rows already sent in a job that is still alive (a re-run after a kernel restart) are not
sent again: that job is followed instead.

Every job is journaled and the run's rows are in the :class:`~gemini_magics.ledger.Ledger`; one thread
follows all the jobs while the kernel stays free, and reads each finished job's results file as a stream
into the row cache. When the last job ends, the rows are put back in input order a chunk at a time:
into ``--out`` as they go, and bound to ``-o`` as the same DataFrame a live ``--over`` run gives (or,
past ``InteractMagics.max_frame_rows``, as a handle on the results file).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MagicError, OptionError
from .handle import BatchRun, watch

if TYPE_CHECKING:
    from .._client import Client
    from ..ledger import Ledger
    from ..render.live import Views
    from ..session import Session
    from ..types.batches import Batch, BatchResult
    from .rows import RowOutcome, RowsRequest

__all__ = ["BatchRun", "load_batch", "start_batch", "to_generate_content"]  # BatchRun: from .handle

POLL_SECONDS = 10.0
"""How often jobs are polled on the Gemini API (jobs take minutes to hours); the local server's: 0.25 s."""
LOCAL_POLL_SECONDS = 0.25
FILE_LIMIT_BYTES = 2_000_000_000
"""The Batch API's limit on an input file; a part is cut a little before it."""
RESULTS_AT_ONCE = 5_000
"""Results written to the cache and ledger per transaction while a results file is read."""

_CONFIG = (("temperature", "temperature"), ("max_output_tokens", "maxOutputTokens"), ("seed", "seed"),
           ("top_p", "topP"), ("stop_sequences", "stopSequences"))  # fmt: skip
_DEAD = ("BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED")


def to_generate_content(body: dict[str, Any]) -> dict[str, Any]:
    """An interaction request body as a ``GenerateContentRequest`` (pure)."""
    raw = body.get("input")
    parts = [{"type": "text", "text": raw}] if isinstance(raw, str) else list(raw or [])
    request: dict[str, Any] = {"contents": [{"role": "user", "parts": [_part(p) for p in parts]}]}
    if body.get("system_instruction"):
        request["systemInstruction"] = {"parts": [{"text": body["system_instruction"]}]}
    given = body.get("generation_config") or {}
    config = {theirs: given[ours] for ours, theirs in _CONFIG if given.get(ours) is not None}
    formats = body.get("response_format")
    for fmt in formats if isinstance(formats, list) else [formats]:
        if isinstance(fmt, dict) and isinstance(fmt.get("schema"), dict):
            config.update(responseMimeType="application/json", responseJsonSchema=fmt["schema"])
    if config:
        request["generationConfig"] = config
    return request


def _part(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") == "text":
        return {"text": part.get("text", "")}
    mime = part.get("mime_type") or "application/octet-stream"
    if part.get("data") is not None:
        return {"inlineData": {"mimeType": mime, "data": part["data"]}}
    if part.get("uri"):
        return {"fileData": {"mimeType": mime, "fileUri": part["uri"]}}
    raise OptionError(f"--batch: a {part.get('type')} part has neither data nor uri")


# -- spooling: the rows to JSONL files on disk, a chunk at a time --------------------------------


@dataclass
class Part:
    number: int
    path: Path
    requests: int = 0
    size: int = 0
    keys: list[str] = field(default_factory=list)
    """The keys not yet recorded in the ledger (flushed a chunk at a time)."""


@dataclass
class Spooled:
    """What spooling found: new parts to send, live jobs that already hold some rows, and the counts."""

    run: str
    parts: list[Part]
    adopted: list[str]
    rows: int = 0
    cached: int = 0
    skipped: int = 0
    duplicates: int = 0
    followed: int = 0
    """Rows answered by a job sent earlier (still alive): not sent again."""


class _Spool:
    """Writes a run's requests into part files, cutting a new part at the row or size limit."""

    def __init__(self, run: str, folder: Path, max_rows: int, ledger: Ledger) -> None:
        self.run, self.folder, self.max_rows, self.ledger = run, folder, max(1, max_rows), ledger
        self.parts: list[Part] = []
        self._out: Any = None

    def write(self, key: str, line: bytes) -> None:
        part = self.parts[-1] if self.parts else None
        if part is None or part.requests >= self.max_rows or part.size + len(line) > FILE_LIMIT_BYTES:
            part = self._next()
        self._out.write(line)
        part.requests += 1
        part.size += len(line)
        part.keys.append(key)

    def _next(self) -> Part:
        self.flush()
        if self._out is not None:
            self._out.close()
        part = Part(len(self.parts) + 1, self.folder / f"part-{len(self.parts) + 1:04}.jsonl")
        self.parts.append(part)
        self._out = part.path.open("wb")
        return part

    def flush(self) -> None:
        """The keys written since the last flush, recorded as pending in their part (before any job exists)."""
        for part in self.parts:
            if part.keys:
                self.ledger.spool(self.run, part.number, part.keys)
                part.keys = []

    def close(self) -> None:
        self.flush()
        if self._out is not None:
            self._out.close()


class _RequestLines:
    """A row's JSONL line (``{"key": …, "request": GenerateContentRequest}``); what every row shares (the
    config, the schema, the system instruction) is serialized once, not once per row."""

    def __init__(self) -> None:
        self._shared: dict[str, Any] | None = None
        self._tail = ""

    def __call__(self, key: str, body: dict[str, Any]) -> bytes:
        shared = {k: v for k, v in body.items() if k != "input"}
        if shared != self._shared:
            self._shared = shared
            request = to_generate_content({**shared, "input": ""})
            request.pop("contents")
            self._tail = "".join(f", {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in request.items())
        contents = json.dumps(to_generate_content({"input": body.get("input")})["contents"], ensure_ascii=False)
        return f'{{"key": {json.dumps(key)}, "request": {{"contents": {contents}{self._tail}}}}}\n'.encode()


def _spool(request: RowsRequest, session: Session, run: BatchRun, folder: Path, view: Any) -> Spooled:
    """Every row rendered and sorted: cached, skipped, already in a live job, or written to a part file."""
    from ..journal import private_dir
    from .uploads import as_sent

    private_dir(folder)
    ledger = session.ledger()
    client = session.backend().client
    cache = session.row_cache() if request.use_cache else None
    spool = _Spool(run.id, folder, request.batch_job_rows, ledger)
    found = Spooled(run.id, spool.parts, [])
    alive: dict[str, bool] = {}
    line = _RequestLines()
    try:
        for chunk in request.chunks():
            keys = [w.key for w in chunk]
            hits = cache.get_many(keys) if cache is not None else {}
            earlier = ledger.pending(keys)  # this run's earlier chunks too: a row seen before is sent once
            ledger.add_rows(run.id, [(found.rows + n, _label(w.label), w.key, w.missing) for n, w in enumerate(chunk)])
            seen: set[str] = set()
            for work in chunk:
                sent_by, job = earlier.get(work.key, ("", None))
                if work.missing:
                    found.skipped += 1
                elif work.key in hits:
                    found.cached += 1
                elif sent_by == run.id or work.key in seen:
                    found.duplicates += 1
                elif job and request.use_cache and _alive(job, session, alive):
                    found.followed += 1
                    if job not in found.adopted:
                        found.adopted.append(job)
                else:
                    seen.add(work.key)
                    body = {**work.body, "input": as_sent(work.body.get("input"), client, session.uploads)}
                    spool.write(work.key, line(work.key, body))
            found.rows += len(chunk)
            spool.flush()
            view.status(f"writing requests: {found.rows:,} of {request.total:,} rows read")
            if run.stopping.is_set():
                raise MagicError("stopped by you while the requests were written: nothing was sent")
    finally:
        spool.close()
    return found


def _label(label: Any) -> str:
    return label if isinstance(label, str) else json.dumps(label, default=str)


def _alive(job: str, session: Session, known: dict[str, bool]) -> bool:
    """Whether a job an earlier run sent can still answer its rows (asked once per job)."""
    if job not in known:
        entry = session.journal().get(job)
        here = str(session.backend().client.base_url)
        if entry is None or lost(entry, here) or entry.status in ("failed", "cancelled", "expired"):
            known[job] = False
        else:
            try:
                known[job] = session.backend().client.batches.get(job).state not in _DEAD
            except Exception:  # gone from the server: its rows are sent again
                known[job] = False
    return known[job]


# -- starting: spool, upload, create, journal -------------------------------------------------------


def start_batch(request: RowsRequest, session: Session, views: Views, stop: Any = None) -> BatchRun:
    """Write the rows' requests, send them as jobs, follow them from a thread and return at once. The
    run's view shows each phase as it goes; ``stop`` (an Event) set while requests are written sends nothing.
    A run the cache (or earlier jobs' results) answers whole ends at once, its frame bound."""
    backend = session.backend()
    client = backend.client
    run_id = secrets.token_hex(6)
    run = BatchRun(run_id, request.template.model, request.out, 0, len(request.positions) or request.total)
    if stop is not None:
        run.stopping = stop
    schema = request.template.schema
    detail = {"source": request.source, "out": request.out, "schema": {"name": schema.name, "json_schema": schema.json_schema} if schema else None,
              "total": request.total, "max_frame_rows": request.max_frame_rows, "results": str(request.results.path) if request.results is not None else None}  # fmt: skip
    session.ledger().start(run_id, detail)

    def cancel() -> None:
        if not run.jobs:
            run.stopping.set()  # while requests are written: nothing is sent
        for name in list(run.jobs):
            client.batches.cancel(name)

    view = views.background(run, cancel=cancel)
    folder = session.cache_dir() / "spool" / run_id
    try:
        found = _spool(request, session, run, folder, view)
        if not found.parts and not found.adopted:  # nothing to send: the rows are all answered already
            run.result = assemble(request, session, run_id, found, started=run.started)
            run.status = "answered by the row cache: nothing sent"
            session.bind(request.out, getattr(run.result, "frame", run.result))
            session.remember(run.result)
            return run
        names = list(found.adopted) + _send(request, session, client, run, found, view)
    except BaseException as exc:
        run.status, run.error = "not sent", str(exc) if isinstance(exc, MagicError | OptionError) else "interrupted"
        raise
    finally:
        _remove(folder)
        if run.status in ("not sent", "answered by the row cache: nothing sent"):
            run.done.set()
            view.finish(run)
    run.adopt(names, found)
    view.status(run.status)
    session.add_run(run)  # %interact wait follows it like any run
    poll = LOCAL_POLL_SECONDS if _on_loopback(str(client.base_url)) else POLL_SECONDS
    watch(run, lambda: _follow_to_end(request, session, client, run, found, view, poll), view=view,
          base_url=client.base_url)  # fmt: skip
    return run


def _send(request: RowsRequest, session: Session, client: Client, run: BatchRun, found: Spooled, view: Any) -> list[str]:
    """Every part uploaded (resumably), then each made a job, journaled as it is created; the jobs' names.
    (All uploads first: the server is not yet busy running the first job while it receives the others.)"""
    from ..journal import JournalEntry

    headers = dict(request.template.headers) or None
    uploaded = []
    for part in found.parts:
        view.status(f"uploading part {part.number} of {len(found.parts)} ({part.size / 1e6:,.1f} MB)")
        uploaded.append(client.files.upload(part.path, mime_type="application/jsonl",
                                            display_name=f"--over {request.source} part {part.number}"))  # fmt: skip
        part.path.unlink(missing_ok=True)  # the server holds it now
    names = []
    for part, file in zip(found.parts, uploaded, strict=True):
        job = client.batches.create(model=request.template.model, file_name=file.name, extra_headers=headers,
                                    display_name=f"--over {request.source} ({part.number}/{len(found.parts)})")  # fmt: skip
        session.ledger().assign(run.run, part.number, job.name)
        session.journal_start(JournalEntry(job.name, "batch", request.template.model, str(client.base_url), out=request.out,
                                           detail={"source": request.source, "run": run.run, "part": part.number,
                                                   "parts": len(found.parts), "requests": part.requests,
                                                   "embedded": session.backend().kind == "local"}))  # fmt: skip
        names.append(job.name)
        run.jobs[job.name] = job
    return names


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def _on_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def lost(entry: Any, here: str) -> bool:
    """A job that ran on an embedded server other than this kernel's: that server ended with its kernel,
    and the job with it (it can never finish, and its results cannot be read)."""
    return bool(entry.detail.get("embedded")) and entry.base_url != here and entry.status not in ("succeeded",)


def _short(state: str) -> str:
    return state.removeprefix("BATCH_STATE_").lower()


# -- following: every job to its end, each finished job's results read as a stream -------------------


def _follow_to_end(request: RowsRequest, session: Session, client: Client, run: BatchRun, found: Spooled,
                   view: Any, poll: float) -> Any:  # fmt: skip
    """The jobs polled to their ends (the view told as they go), each one's results read as it ends; then
    the rows in order, bound and remembered."""
    ended: dict[str, str] = {}
    while len(ended) < len(run.jobs):
        for name in [n for n in run.jobs if n not in ended]:
            batch = client.batches.get(name)
            run.jobs[name] = batch
            if batch.done:
                if batch.state == "BATCH_STATE_SUCCEEDED":
                    read_results(session, client, batch, request.template.schema, request.template.model, request.use_cache)
                ended[name] = _short(batch.state)
                session.journal_end(name, ended[name])
        run.status = run.summary_state()
        view.status(run.status)
        if len(ended) < len(run.jobs) and run.stopping.wait(poll):
            raise MagicError(f"stopped following {run.id}; its jobs run on (%interact batch list)")
    dead = {n: s for n, s in ended.items() if s != "succeeded"}
    if dead:
        name, state = next(iter(dead.items()))
        last = run.jobs[name]
        reason = ((last.error or {}).get("message") if last is not None else None) or "no reason given"
        kept = len(ended) - len(dead)
        more = f" (and {len(dead) - 1} more)" if len(dead) > 1 else ""
        raise MagicError(f"the batch job {name}{more} ended {state} ({reason}); "
                         f"{f'the results of the {kept} that succeeded are cached; ' if kept else ''}"
                         "re-run the cell to send the rest again")  # fmt: skip
    result = assemble(request, session, run.run, found, started=run.started)
    session.bind(request.out, getattr(result, "frame", result))
    session.remember(result)
    return result


def read_results(session: Session, client: Client, batch: Batch, schema: Any, model: str, use_cache: bool) -> int:
    """A finished job's results, read as a stream into the ledger (and the row cache); how many."""
    ledger = session.ledger()
    outcomes: list[tuple[str, str]] = []
    answers: list[tuple[str, str]] = []
    read = 0

    def flush() -> None:
        ledger.add_results(outcomes, answers)
        outcomes.clear()
        answers.clear()

    for result in client.batches.results(batch):
        if result.key is None:
            continue
        outcome = _outcome(result, schema, model)
        answer = json.dumps(outcome.answer, ensure_ascii=False, default=str)  # once, for both tables
        rest = json.dumps({"status": outcome.status, "error": outcome.error, "kind": outcome.kind}, ensure_ascii=False)
        outcomes.append((result.key, f'{rest[:-1]}, "answer": {answer}}}'))
        if outcome.status == "ok" and use_cache:
            answers.append((result.key, answer))
        read += 1
        if len(outcomes) >= RESULTS_AT_ONCE:
            flush()
    flush()
    ledger.read(batch.name)
    return read


def _outcome(result: BatchResult, schema: Any, model: str) -> RowOutcome:
    """One request's outcome, checked as a live row's is."""
    from ..answers import one_line
    from .rows import RowOutcome, checked

    if result.error is not None or result.response is None:
        error = result.error or {}
        code = error.get("status") or error.get("code", "?")  # a google.rpc.Status: its name says more than its number
        return RowOutcome("error", error=one_line(f"the request failed ({code}): {error.get('message', 'no response')}"),
                          kind="server")  # fmt: skip
    response = result.response
    candidate = (response.get("candidates") or [{}])[0]
    text = "".join(p.get("text", "") for p in (candidate.get("content") or {}).get("parts") or [])
    usage = response.get("usageMetadata") or {}
    answer: dict[str, Any] = {"text": text, "id": response.get("responseId") or result.key, "model": response.get("modelVersion") or model,
                              "input_tokens": usage.get("promptTokenCount", 0),
                              "output_tokens": usage.get("candidatesTokenCount", 0)}  # fmt: skip
    finish = candidate.get("finishReason")
    if finish not in (None, "STOP", "MAX_TOKENS"):
        return RowOutcome("error", answer, error=f"refused or blocked: finishReason {finish}", kind="refused")
    return checked(answer, schema, "cut at the output-token limit" if finish == "MAX_TOKENS" else None)


# -- the rows back in order -----------------------------------------------------------------------


def assemble(request: RowsRequest | None, session: Session, run_id: str, found: Spooled | None,
             *, started: float | None = None, schema: Any = None) -> Any:  # fmt: skip
    """The run's rows in input order, a chunk at a time, from the ledger: written to ``--out`` (or, past
    ``max_frame_rows``, to a results file of the run's own) and gathered into the ``-o`` frame when it fits."""
    import pandas as pd

    from ..render.result import RowsOnDisk, RowsResult
    from .rows import summary_line

    ledger = session.ledger()
    total = ledger.count(run_id)
    out, limit = _target(request, session, run_id, total)
    frames, outcomes, stats = _gather(request, ledger, run_id, total, out, limit, schema)
    written = out.close() if out is not None else 0
    if request is not None:
        stats.cost = request.cost(None, stats.input_tokens, stats.output_tokens) or 0.0
    backend = session.started_backend
    stats.local = backend is not None and backend.kind == "local"  # the local server charges nothing
    stats.started = started if started is not None else stats.started
    stats.ended = time.monotonic()
    figures = summary_line(stats, request) if request is not None else ""
    summary = f"batch {figures}" if figures else f"batch run {run_id}: {stats.done:,} ok, {stats.failed:,} failed of {total:,} rows"
    if found is not None and found.followed:
        summary += f" · {found.followed:,} answered by a job sent earlier (not sent again)"
    if out is not None:
        summary += f" · {written:,} rows written to {out.path}"
    if total > limit:
        assert out is not None
        return RowsOnDisk(out.path, total, summary, stats)
    return RowsResult(pd.concat(frames) if len(frames) > 1 else frames[0], summary, outcomes, stats)


def _target(request: RowsRequest | None, session: Session, run_id: str, total: int) -> tuple[Any, int]:
    """Where the rows go (``--out``, or a file of the run's own when they will not be one frame), and how
    many rows a frame may hold."""
    from .out import ResultsFile

    detail = session.ledger().detail(run_id) or {}
    limit = request.max_frame_rows if request is not None else int(detail.get("max_frame_rows") or 200_000)
    out = request.results if request is not None else (ResultsFile(detail["results"]) if detail.get("results") else None)
    if out is None and total > limit:
        out = ResultsFile(str(session.cache_dir() / "results" / f"{run_id}.parquet"))
        out.path.parent.mkdir(parents=True, exist_ok=True)
    return out, limit


def _gather(request: RowsRequest | None, ledger: Ledger, run_id: str, total: int, out: Any, limit: int,
            schema: Any) -> tuple[list[Any], list[RowOutcome], Any]:  # fmt: skip
    """Each chunk of rows made a frame: written to ``out``, kept when the whole fits in one frame."""
    import pandas as pd

    from .rows import RowStats, count, frame_of

    if request is not None:
        schema = request.template.schema
    flatten = request.flatten if request is not None else False
    index = request.index if request is not None and not request.sampled else None
    stats = RowStats(total=total)
    frames: list[Any] = []
    kept: list[RowOutcome] = []
    for chunk in ledger.rows(run_id):
        outcomes = [_row_outcome(missing, cached, stored, job) for _, _, missing, cached, stored, job in chunk]
        for outcome in outcomes:
            count(stats, outcome)
            if not outcome.cached:
                stats.input_tokens += int(outcome.answer.get("input_tokens") or 0)
                stats.output_tokens += int(outcome.answer.get("output_tokens") or 0)
        # the input's own index where rows are its first ones in order; else the labels as the ledger keeps them
        labels = (index.take([position for position, *_ in chunk]) if hasattr(index, "take")  # type: ignore[union-attr]
                  else pd.Index([_unlabel(label) for _, label, *_ in chunk]))  # fmt: skip
        frame = frame_of(schema, labels, outcomes, flatten=flatten)
        if out is not None:
            out.write(frame)
        if total <= limit:
            frames.append(frame)
            kept += outcomes
    return frames, kept, stats


def _row_outcome(missing: str | None, cached: str | None, stored: str | None, job: str | None) -> RowOutcome:
    from .rows import RowOutcome

    if missing:
        return RowOutcome("skipped", error=f"not sent: {missing} (--keep-missing sends such rows)", kind="missing")
    if stored is not None:
        data = json.loads(stored)
        return RowOutcome(data["status"], data.get("answer") or {}, error=data.get("error"), kind=data.get("kind"))
    if cached is not None:
        return RowOutcome("ok", json.loads(cached), cached=True)
    why = f"its job {job} returned no result for it" if job else "no job returned a result for it"
    return RowOutcome("error", error=why, kind="server")


def _unlabel(label: str) -> Any:
    try:
        return json.loads(label)
    except ValueError:
        return label


def load_batch(name: str, session: Session, schema: Any = None) -> Any:
    """A journaled job's run, its rows back in order (e.g. after a kernel restart): the results of its jobs
    that ended are read (once), rows still out in a running job say so. ``RowsResult``.

    Answers are checked against ``schema`` (a ``request.Schema``: the pydantic class, with its own
    validators) when given, else against the JSON schema the run was sent with.
    """
    from ..request import Schema

    name = name if name.startswith("batches/") else f"batches/{name}"
    entry = session.journal().get(name)
    if entry is not None and lost(entry, str(session.backend().client.base_url)):
        raise MagicError(f"interact batch load: {name} ran on the embedded server of an earlier kernel, which ended "
                         "with that kernel and took the job's results with it; re-run its --over cell to send the rows "
                         f"again (%interact batch forget {name} drops it from the list)")  # fmt: skip
    if entry is None or entry.kind != "batch":
        raise OptionError(f"interact batch load: {name} is not in the journal (%interact batch list shows the jobs)")
    run_id = str(entry.detail.get("run") or "")
    detail = session.ledger().detail(run_id) if run_id else None
    if detail is None:
        raise MagicError(f"interact batch load: the rows of {name}'s run are no longer on disk (the cache was cleared, "
                         "or 20 runs came after it); re-run its --over cell: answered rows come from the row cache")  # fmt: skip
    client = session.backend().client
    saved = detail.get("schema")
    if schema is None and saved:
        schema = Schema(saved["name"], saved["json_schema"], saved["json_schema"])
    here = str(client.base_url)
    jobs = [e for e in session.journal().entries("batch", limit=10_000) if e.detail.get("run") == run_id]
    for job in jobs:
        batch = client.batches.get(job.id)
        if batch.state == "BATCH_STATE_SUCCEEDED" and session.ledger().pending_in(job.id) and not lost(job, here):
            read_results(session, client, batch, schema, job.model, True)
        if batch.done:
            session.journal_end(job.id, _short(batch.state))
        elif job.id == name:
            raise MagicError(f"interact batch load: {name} is {_short(batch.state)}, not succeeded: nothing to load yet")
    return assemble(None, session, run_id, None, schema=schema)
