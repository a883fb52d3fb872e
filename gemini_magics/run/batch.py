"""``--over NAME --batch``: the rows as a Gemini Batch API job, for what outgrows live calls.

Each row's interaction request becomes a ``GenerateContentRequest`` (contents and parts, inline or file
data, ``generationConfig`` with the JSON schema) keyed by the row's cache key, so results are matched to
rows by key, never by order. Rows the cache already answers are not sent; identical rows go once. Up to
20 MB the requests go inline, beyond that as a JSONL file through the Files API. The job is journaled on
disk and followed from a background thread while the kernel stays free; when it ends, its results go
into the row cache (never downloaded twice) and become the same DataFrame as a live ``--over`` run.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from ..errors import MagicError, OptionError
from .handle import BatchRun, watch

if TYPE_CHECKING:
    from .._client import Client
    from ..render.live import Views
    from ..session import Session
    from ..types.batches import Batch, BatchResult
    from .rows import RowOutcome, RowsRequest

__all__ = ["BatchRun", "load_batch", "start_batch", "to_generate_content"]  # BatchRun: from .handle

POLL_SECONDS = 10.0
"""How often a job is polled on the Gemini API (jobs take minutes to hours); the local server's: 0.25 s."""
LOCAL_POLL_SECONDS = 0.25

_CONFIG = (("temperature", "temperature"), ("max_output_tokens", "maxOutputTokens"), ("seed", "seed"),
           ("top_p", "topP"), ("stop_sequences", "stopSequences"))  # fmt: skip


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


def start_batch(request: RowsRequest, session: Session, views: Views) -> BatchRun:
    """Send the rows the cache does not answer as one job; follow it from a thread; return at once."""
    from ..journal import JournalEntry
    from ..resources.batches import INLINE_LIMIT_BYTES
    from .uploads import as_sent

    backend = session.backend()
    client = backend.client
    cache = session.row_cache() if request.use_cache else None
    cached = cache.get_many([r.key for r in request.rows]) if cache is not None else {}
    unique = {r.key: r for r in request.rows if r.key not in cached and not r.missing}
    if not unique:
        raise OptionError(
            "--batch: every row is answered by the row cache already: run the cell without --batch"
        )
    entries = []
    for key, work in unique.items():
        body = {**work.body, "input": as_sent(work.body.get("input"), client, session.uploads)}
        entries.append((key, to_generate_content(body)))
    model = request.template.model
    inline = [{"request": r, "metadata": {"key": k}} for k, r in entries]
    size = len(json.dumps(inline))
    headers = dict(request.template.headers) or None
    if size <= INLINE_LIMIT_BYTES:
        batch = client.batches.create(model=model, requests=inline, display_name=f"--over {request.source}",
                                      extra_headers=headers)  # fmt: skip
        how = "inline"
    else:
        lines = "".join(json.dumps({"key": k, "request": r}) + "\n" for k, r in entries).encode()
        jsonl = client.files.upload(
            lines, mime_type="application/jsonl", display_name=f"--over {request.source}.jsonl"
        )
        batch = client.batches.create(model=model, file_name=jsonl.name, display_name=f"--over {request.source}",
                                      extra_headers=headers)  # fmt: skip
        how = "file"
    run = BatchRun(batch.name, model, request.out, len(entries), len(request.rows))
    run.batch, run.status = batch, _short(batch.state)
    schema = request.template.schema
    detail = {"source": request.source, "keys": [r.key for r in request.rows],
              "labels": json.loads(json.dumps([r.label for r in request.rows], default=str)), "input": how,
              "requests": len(entries), "schema": {"name": schema.name, "json_schema": schema.json_schema} if schema else None,
              "embedded": session.backend().kind == "local"}  # fmt: skip
    entry = JournalEntry(batch.name, "batch", model, str(client.base_url), out=request.out, detail=detail)
    session.journal_start(entry)
    view = views.background(run, cancel=lambda: client.batches.cancel(batch.name))
    session.add_run(run)  # %interact wait follows it like any run
    poll = LOCAL_POLL_SECONDS if _on_loopback(str(client.base_url)) else POLL_SECONDS
    watch(run, lambda: _follow_to_end(request, session, client, run, view, poll), view=view, base_url=client.base_url)
    return run


def _on_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def lost(entry: Any, here: str) -> bool:
    """A job that ran on an embedded server other than this kernel's: that server ended with its kernel,
    and the job with it (it can never finish, and its results cannot be read)."""
    return bool(entry.detail.get("embedded")) and entry.base_url != here and entry.status not in ("succeeded",)


def _short(state: str) -> str:
    return state.removeprefix("BATCH_STATE_").lower()


def _follow_to_end(request: RowsRequest, session: Session, client: Client, run: BatchRun, view: Any, poll: float) -> Any:
    """The job polled to its end (the view told each state), its results loaded, bound and remembered."""
    batch = run.batch
    assert batch is not None
    while not batch.done:
        if run.stopping.wait(poll):
            raise MagicError(f"stopped following {run.id}; it runs on (%interact batch get {run.id})")
        batch = client.batches.get(run.id)
        run.batch, run.status = batch, _short(batch.state)
        view.status(run.status)
    session.journal_end(run.id, run.status)
    if batch.state != "BATCH_STATE_SUCCEEDED":
        reason = (batch.error or {}).get("message") or "no reason given"
        raise MagicError(f"the batch job ended {run.status} ({reason}); re-run the cell to send the rows again")
    result = _finish(request, session, client, batch, run.started)
    session.bind(request.out, result.frame)
    session.remember(result)
    return result


def _finish(request: RowsRequest, session: Session, client: Client, batch: Batch, started: float) -> Any:
    from ..render.result import RowsResult
    from .rows import RowOutcome, skipped_outcome, summary_line, to_frame

    outcomes = _outcomes(session, client, batch, [r.key for r in request.rows], request.template.schema,
                         request.template.model, request.use_cache)  # fmt: skip
    ordered = [skipped_outcome(r) if r.missing else outcomes.get(r.key)
               or RowOutcome("error", error="the job returned no result for this row", kind="server") for r in request.rows]  # fmt: skip
    stats = _stats(ordered, started)
    return RowsResult(
        to_frame(request, ordered), "batch " + summary_line(stats, ordered, request), ordered, stats
    )


def _stats(outcomes: list[RowOutcome], started: float | None = None) -> Any:
    """The figures of a finished job (its wall time from ``started``, when this kernel started it)."""
    from .rows import RowStats, count

    stats = RowStats(total=len(outcomes))
    for outcome in outcomes:
        count(stats, outcome)
    stats.started = started if started is not None else stats.started
    stats.ended = time.monotonic() if started is not None else stats.started
    return stats


def _outcomes(
    session: Session, client: Client, batch: Batch, keys: list[str], schema: Any, model: str, use_cache: bool
) -> dict[str, RowOutcome]:
    """Each key's outcome: from the row cache where it has one, else from the job's results (which are
    then cached: a finished job's results are downloaded once)."""
    from .rows import RowOutcome

    cache = session.row_cache()
    found = cache.get_many(keys) if use_cache else {}
    outcomes: dict[str, RowOutcome] = {k: RowOutcome("ok", a, cached=True) for k, a in found.items()}
    if all(k in outcomes for k in keys):
        return outcomes
    for result in client.batches.results(batch):
        if result.key is None or result.key in outcomes:
            continue
        outcome = _outcome(result, schema, model)
        outcomes[result.key] = outcome
        if outcome.status == "ok" and use_cache:
            cache.put(result.key, outcome.answer)
    return outcomes


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


def load_batch(name: str, session: Session, schema: Any = None) -> Any:
    """A journaled job's results as the DataFrame (e.g. after a kernel restart); ``RowsResult``.

    Answers are checked against ``schema`` (a ``request.Schema``: the pydantic class, with its own
    validators) when given, else against the JSON schema the job was sent with.
    """
    from ..render.result import RowsResult
    from ..request import Schema
    from .rows import RowOutcome, frame_of

    name = name if name.startswith("batches/") else f"batches/{name}"
    entry = session.journal().get(name)
    if entry is not None and lost(entry, str(session.backend().client.base_url)):
        raise MagicError(f"interact batch load: {name} ran on the embedded server of an earlier kernel, which ended "
                         "with that kernel and took the job's results with it; re-run its --over cell to send the rows "
                         f"again (%interact batch forget {name} drops it from the list)")  # fmt: skip
    if entry is None or entry.kind != "batch":
        raise OptionError(
            f"interact batch load: {name} is not in the journal (%interact batch list shows the jobs)"
        )
    client = session.backend().client
    batch = client.batches.get(name)
    if batch.state != "BATCH_STATE_SUCCEEDED":
        raise MagicError(
            f"interact batch load: {name} is {_short(batch.state)}, not succeeded: nothing to load yet"
        )
    saved = entry.detail.get("schema")
    if schema is None and saved:
        schema = Schema(saved["name"], saved["json_schema"], saved["json_schema"])
    keys: list[str] = entry.detail["keys"]
    outcomes = _outcomes(session, client, batch, keys, schema, entry.model, True)
    ordered = [outcomes.get(k) or RowOutcome("error", error="the job returned no result for this row", kind="server")
               for k in keys]  # fmt: skip
    stats = _stats(ordered)
    session.journal_end(name, "succeeded")
    failed = sum(o.status != "ok" for o in ordered)
    summary = f"batch {name}: {len(ordered)} rows, {len(ordered) - failed} ok, {failed} failed (--over {entry.detail.get('source')})"
    return RowsResult(frame_of(schema, entry.detail["labels"], ordered), summary, ordered, stats)
