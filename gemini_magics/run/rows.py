"""``--over NAME``: one stateless interaction per row of a DataFrame, concurrent, cached, stoppable.

The cell is a template rendered once per row (``{{row.col}}``, ``{{row["col name"]}}``, ``{{row}}``;
every other reference is the usual kernel object, shared by all rows). Rows run concurrently under an
additive-increase / multiplicative-decrease limit: a 429 or 503 halves it and pauses for the server's
``Retry-After``, each success raises it again by about one per round. Every successful row is written to
the on-disk :class:`~gemini_magics.cache.RowCache` as it arrives, so a re-run sends only what is missing.
One bad row never stops the others: it becomes a row with ``_status == "error"`` and a one-line
``_error``. The result is a DataFrame on the input's index.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections import ChainMap, Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

# imported with the module, not in the functions each row calls (an import statement costs a row microseconds)
from .._exceptions import APIConnectionError, APIStatusError, APITimeoutError
from .._retry import is_retryable_status, parse_retry_after, retry_delay
from ..answers import cut_note, one_line, structured
from ..errors import OptionError, TemplateError, describe_api_error
from ..inputs import find_references, render_parts, resolve
from .sources import CHUNK_ROWS
from .uploads import as_sent

if TYPE_CHECKING:
    from .._client import Client
    from ..cache import RowCache
    from ..render.result import RowsDryRun
    from ..request import CellRequest, Schema, Settings
    from ..types.interaction import Interaction

__all__ = ["RowsRequest", "build_rows_request", "dry_run_of", "run_rows"]

MAX_ATTEMPTS = 20
"""Attempts per row at most while the server is overloaded (429, 503, timeouts)."""
MAX_ERROR_ATTEMPTS = 3
"""Attempts per row at most on other server errors (500, 502, ...): they rarely pass on a fourth try."""
SAVE_WITHIN_SECONDS = 0.01
"""An answer waits this long at most to be written to the row cache with the others that land meanwhile
(one transaction for several answers costs each a third of one of its own)."""
SAVE_BATCH = 64
"""Answers written to the row cache at once at most (sooner when :data:`SAVE_WITHIN_SECONDS` is up)."""
RENDER_BATCH = 64
"""Rows rendered at a time while a live run sends: each batch holds the event loop for a few milliseconds
only, so the answers arriving meanwhile are not kept waiting."""
FLEX_TIMEOUT_SECONDS = 900.0
"""Flex answers take minutes at busy times (variable latency, best-effort): a flex row waits this long at
least, and one that times out is not sent again (the first request may still be answered, and billed)."""
MEDIA_TOKENS = 258
"""What the dry run counts for an image, audio, video or document part (the API's figure for an image)."""


class Row(dict[str, Any]):
    """``{{row}}`` as a small record; ``{{row.col}}`` and ``{{row["col name"]}}`` its columns."""

    def __getattribute__(self, name: str) -> Any:
        # a column wins over dict's own attributes: {{row.items}}, {{row.values}} are columns, not methods
        if not name.startswith("_") and dict.__contains__(self, name):
            return dict.__getitem__(self, name)
        return super().__getattribute__(name)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass(frozen=True)
class RowWork:
    label: Any
    """The row's label in the input's index."""
    body: dict[str, Any]
    key: str
    """The hash of the row's full request: the cache key."""
    missing: str | None = None
    """Why the row is not sent: a value it references is missing (``--keep-missing`` sends it anyway)."""
    model: str | None = None
    """With ``-m a,b``: which of the models this request is for."""


@dataclass(frozen=True)
class RowsRequest:
    """A checked ``--over`` cell: the shared settings (``template``) and every row's request."""

    template: CellRequest
    source: str
    stream: Callable[[int], Iterator[list[RowWork]]]
    """The rows' requests, so many rows at a time, rendered as they are read (a run never holds the input twice)."""
    index: Any
    """The input's index (the rows' labels, in order), for the result."""
    total: int
    """Rows in the input (``--limit`` may run fewer)."""
    concurrency: int
    use_cache: bool
    budget: int | None
    service_tier: str | None
    dry_run: bool = False
    batch: bool = False
    """``--batch``: the rows go to the Batch API as one job instead of live calls."""
    positions: tuple[int, ...] = ()
    """Which rows of the input run (all, the first ``--limit``, or a ``--sample``)."""
    sampled: bool = False
    flatten: bool = False
    """``--flatten``: nested schema objects become columns of their own."""
    labels: Any = None
    """``--check``: the labels the answers are scored against."""
    models: tuple[str, ...] = ()
    """``-m a,b``: every row goes to each model (the stream holds a request per row and model, row by row)."""
    results: Any = None
    """``--out``: the :class:`.out.ResultsFile` rows are written to as they are answered."""
    budget_cost: float | None = None
    """``--budget $N``: the most the run may cost, in dollars (at :attr:`tier`'s prices)."""
    prices: Mapping[str, Any] = field(default_factory=dict)
    """``InteractMagics.prices``: the config's prices over the shipped table."""
    max_frame_rows: int = 200_000
    batch_job_rows: int = 200_000
    _prices_found: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def chunks(self, rows: int = CHUNK_ROWS) -> Iterator[list[RowWork]]:
        """Every row's requests, in input order, ``rows`` rows at a time."""
        return self.stream(rows)

    @property
    def requests(self) -> int:
        """How many requests the run makes at most: one per row, or one per row and model."""
        return len(self.positions) * max(1, len(self.models))

    def model_of(self, n: int) -> str:
        """The model the run's ``n``-th request asks for."""
        return self.models[n % len(self.models)] if self.models else self.template.model

    @property
    def out(self) -> str | None:
        return self.template.out

    @property
    def silent(self) -> bool:
        return self.template.silent

    @property
    def tier(self) -> str:
        """The price tier the run is billed at."""
        return "batch" if self.batch else ("flex" if self.service_tier == "flex" else "standard")

    def cost(self, model: str | None, input_tokens: int, output_tokens: int) -> float | None:
        """What these tokens cost on ``model`` (the template's by default) at the run's tier; None: unknown."""
        name = model or self.template.model
        if name not in self._prices_found:  # looked up once a run, not once a row
            from ..prices import price_of

            self._prices_found[name] = price_of(name, self.prices)
        price = self._prices_found[name]
        return price.cost(input_tokens, output_tokens, self.tier) if price is not None else None

    @property
    def timeout(self) -> float:
        if self.service_tier == "flex":
            return max(self.template.timeout, FLEX_TIMEOUT_SECONDS)
        return self.template.timeout


# -- building (pure: nothing is sent) -------------------------------------------------------------


def check_row_options(args: argparse.Namespace) -> None:
    """Options that only mean something with ``--over``, or that cannot go with it."""
    if args.over is None:
        for flag, value in (("--limit", args.limit), ("--sample", args.sample), ("--concurrency", args.concurrency),
                            ("--keep-missing", args.keep_missing or None), ("--flatten", args.flatten or None),
                            ("--check", args.check), ("--out", args.out_file),
                            ("--budget", args.budget), ("--no-cache", args.no_cache or None), ("--batch", args.batch or None)):  # fmt: skip
            if value is not None:
                raise OptionError(f"{flag} applies to rows: add --over NAME (a DataFrame, Series or list)")
        return
    clashes = [flag for flag, on in (("--chain", args.chain), ("--new", args.new), ("--background", args.background),
                                     ("--agent", args.agent), ("--tools", args.tools), ("--mcp", args.mcp), ("--video", args.video),
                                     ("--no-store", args.no_store)) if on]  # fmt: skip
    if clashes:
        raise OptionError(
            f"--over runs one stateless interaction per row, so {', '.join(clashes)} cannot be used with it"
        )
    if args.batch and args.model and "," in args.model:
        raise OptionError("-m a,b compares models on live rows: a Batch API job runs one model (drop --batch)")
    if args.batch and (args.concurrency is not None or args.budget is not None or args.service_tier):
        raise OptionError(
            "--batch hands the rows to the Batch API: --concurrency, --budget and --service-tier apply to live rows"
        )
    if args.limit is not None and args.limit < 1:
        raise OptionError(f"--limit must be at least 1, got {args.limit}")
    if args.sample is not None and (args.sample < 1 or args.limit is not None):
        raise OptionError("--sample K takes K ≥ 1 rows at random; --limit takes the first ones: use one of them")
    if args.concurrency is not None and not 1 <= args.concurrency <= 256:
        raise OptionError(f"--concurrency must be between 1 and 256, got {args.concurrency}")
    if args.budget is not None:
        from ..prices import parse_budget

        parse_budget(args.budget)


def _positions(total: int, limit: int | None, sample: int | None, seed: int) -> list[int]:
    """Which rows run: all, the first ``limit``, or ``sample`` of them drawn with ``seed`` (in input order,
    and the same draw every run, so a re-run is answered from the cache)."""
    import random

    if sample is not None:
        return sorted(random.Random(seed).sample(range(total), min(sample, total)))
    return list(range(min(limit or total, total)))


def _results_file(path: str | None) -> Any:
    if path is None:
        return None
    from .out import ResultsFile

    return ResultsFile(path)


def _labels(name: str | None, source: Any, namespace: Mapping[str, Any]) -> Any:
    """The labels ``--check NAME`` names: a variable (a DataFrame or Series on the input's index), a
    reference into one, or a column of the ``--over`` input itself."""
    if name is None:
        return None
    columns = getattr(source, "columns", None)
    if columns is not None and name in columns and name.split(".", 1)[0].split("[", 1)[0] not in namespace:
        return source[name]
    try:
        labels = over_source(name, namespace)
    except OptionError:
        raise OptionError(f"--check {name}: no such variable or --over column (labels: a DataFrame or Series "
                          "on the rows' index, with columns named like the schema's fields)") from None
    pd = sys.modules.get("pandas")
    if pd is None or not isinstance(labels, pd.DataFrame | pd.Series):  # said before anything is sent
        raise OptionError(f"--check {name}: labels must be a DataFrame or Series, not {type(labels).__name__}")
    return labels


def scored(request: RowsRequest, frame: Any) -> Any:
    """``--check``'s report on the frame (with ``-m a,b``, one per model), or None without ``--check``."""
    if request.labels is None:
        return None
    from .check import check_answers

    def report(answers: Any) -> Any:
        fields = [c for c in answers.columns if not str(c).startswith("_")]
        kinds = {c: "enum" for c in fields if str(answers[c].dtype) == "category"}
        return check_answers(answers, request.labels, fields, kinds)

    if not request.models:
        return report(frame)
    return {model: report(frame[[c for c in frame.columns if c.endswith(f"@{model}")]]
                          .rename(columns=lambda c: c.rsplit("@", 1)[0])) for model in request.models}  # fmt: skip


def default_concurrency(backend: str) -> int:
    """Rows at once when neither ``--concurrency`` nor the config says: the embedded SmolLM2 engine answers
    one request at a time (more would only queue, and time out), anything else takes eight."""
    return 1 if backend == "local:smollm2" else 8


def over_source(expr: str, namespace: Mapping[str, Any]) -> Any:
    """What ``--over EXPR`` names: a variable, or a reference into one (``reviews.text``, ``df["col"]``;
    the line's quotes may be gone, so ``df[col]`` is a column too)."""
    import re

    from ..inputs import REFERENCE
    from .sources import looks_like_files

    if looks_like_files(expr):
        return Path(expr).expanduser()
    expr = re.sub(r"\[\s*([A-Za-z_][\w ]*?)\s*\]", lambda m: f'["{m.group(1)}"]', expr.strip())
    if REFERENCE.fullmatch("{{" + expr + "}}") is None:
        raise OptionError(f"--over {expr}: give a variable, or a column of one (reviews, reviews.text, df[\"text\"])")
    name = expr.split(".", 1)[0].split("[", 1)[0].strip()
    if name not in namespace:
        raise OptionError(f"--over {name}: no such variable (a DataFrame, Series or list of rows)")
    try:
        return resolve(expr, namespace)
    except TemplateError as exc:
        raise OptionError(f"--over {expr}: {str(exc).split(': ', 1)[-1]}") from None


def build_rows_request(
    args: argparse.Namespace, cell: str, namespace: Mapping[str, Any], settings: Settings, backend: str
) -> RowsRequest:
    """Check the cell (its template on the first row) and set up the rendering of every row's request, which
    happens as the rows are read; nothing is sent."""
    from ..chains import ChainRegistry
    from ..inputs import Options
    from ..request import build_request
    from .sources import record_stream

    source = over_source(args.over, namespace)
    stream = record_stream(source, args.over)
    if not stream.total:
        raise OptionError(f"--over {args.over}: it has no rows")
    positions = _positions(stream.total, args.limit, args.sample, args.sample_seed)
    models = [m.strip() for m in (args.model or "").split(",") if m.strip()] if args.model and "," in args.model else []
    row_args = argparse.Namespace(
        **{**vars(args), "no_store": not args.store, "no_stream": True, "over": None,
           "model": models[0] if models else args.model}
    )  # fmt: skip
    empty_plan = ChainRegistry().plan("rows", "rows", stateless=True)
    shared = dict(namespace)  # one copy: each row's namespace is its record in front of it
    head = Row(next(stream.chunks())[0])
    try:  # the shared options, checked once
        template = build_request(row_args, cell, ChainMap({"row": head}, shared), settings, lambda *_: empty_plan)
    except TemplateError as exc:
        raise OptionError(_row_hint(str(exc), head, 0)) from None
    renderer = _Renderer(template, shared, Options(table_budget=settings.table_budget, max_rows=settings.table_rows,
                         lazy_files=True), backend, models, args.keep_missing)  # fmt: skip

    def chunks(rows: int) -> Iterator[list[RowWork]]:
        return renderer.chunks(stream, positions, rows)

    index = stream.labels()
    budget, budget_cost = _budget(args.budget, models or [template.model], settings)
    return RowsRequest(
        template=template, source=args.over, stream=chunks, index=index, total=stream.total,
        concurrency=args.concurrency or settings.concurrency or default_concurrency(backend), use_cache=not args.no_cache,
        budget=budget, budget_cost=budget_cost, prices=dict(settings.prices), max_frame_rows=settings.max_frame_rows,
        batch_job_rows=settings.batch_job_rows, positions=tuple(positions), sampled=args.sample is not None, flatten=args.flatten,
        labels=_labels(args.check, source, namespace), models=tuple(models), results=_results_file(args.out_file),
        service_tier=args.service_tier, dry_run=args.dry_run, batch=args.batch,
    )  # fmt: skip


class _Renderer:
    """Each row's requests from the checked template: its prompt rendered with the row, its body, its key."""

    def __init__(self, template: CellRequest, shared: dict[str, Any], options: Any, backend: str, models: list[str],
                 keep_missing: bool) -> None:  # fmt: skip
        self.template, self.shared, self.options, self.backend = template, shared, options, backend
        from ..cache import KeyMaker

        self.models: list[str | None] = list(models)
        self.keep_missing = keep_missing
        self.key = KeyMaker(backend)
        self.row_references = [e for e in find_references(template.prompt) if e.startswith("row")]
        self.checked = False
        """The prompt's references were checked against the namespace (by the first row): later rows,
        whose namespaces differ only in ``row``, skip that."""

    def works(self, position: int, label: Any, record: Row) -> list[RowWork]:
        template = self.template
        try:
            parts = render_parts(template.prompt, ChainMap({"row": record}, self.shared), self.options, [],
                                 checked=self.checked)  # fmt: skip
        except TemplateError as exc:
            raise OptionError(_row_hint(str(exc), record, position)) from None
        self.checked = True
        body = template.body(parts)
        missing = None if self.keep_missing else missing_value(template.prompt, record, self.row_references)
        return [RowWork(label, each, self.key(_keyable(each)), missing, model)
                for model in [*self.models] or [None] for each in [{**body, "model": model} if model else body]]  # fmt: skip

    def chunks(self, stream: Any, positions: list[int], size: int) -> Iterator[list[RowWork]]:
        """Every chosen row's requests, in input order, ``size`` rows at a time (rendered as they are asked
        for: a run never holds the input twice, and a live run sends while it renders)."""
        wanted = set(positions) if len(positions) < stream.total else None
        labels = stream.labels()
        start = 0
        for records in stream.chunks():
            end = start + len(records)
            names = labels[start:end]
            names = names.tolist() if hasattr(names, "tolist") else list(names)
            chosen = [n for n in range(len(records)) if wanted is None or start + n in wanted]
            for at in range(0, len(chosen), size):
                yield [w for n in chosen[at : at + size] for w in self.works(start + n, names[n], Row(records[n]))]
            start = end
            if start > positions[-1]:
                return


def _budget(text: str | None, models: list[str], settings: Settings) -> tuple[int | None, float | None]:
    """``--budget``'s tokens or dollars; dollars need every model's price."""
    if text is None:
        return None, None
    from ..prices import parse_budget, price_of

    tokens, dollars = parse_budget(text)
    unknown = [m for m in models if price_of(m, settings.prices) is None]
    if dollars is not None and unknown:
        raise OptionError(f"--budget {text}: no price is known for {', '.join(unknown)}; give the budget in tokens, "
                          "or the price with %config InteractMagics.prices")  # fmt: skip
    return tokens, dollars


def missing_value(prompt: str, record: Row, references: list[str] | None = None) -> str | None:
    """The first ``{{row…}}`` reference of ``prompt`` whose value is missing (None, NaN, NA or blank text),
    said as what to show the user; None when every value is there. ``references``: the prompt's ``row``
    references, found once for many rows."""
    for expr in references if references is not None else find_references(prompt):
        if not expr.startswith("row"):
            continue
        try:
            value = resolve(expr, {"row": record})
        except (TemplateError, KeyError):
            continue
        why = _missing(value)
        if why:
            return f"{{{{{expr}}}}} is {why}"
    return None


def _missing(value: Any) -> str | None:
    if value is None:
        return "None"
    if isinstance(value, str):
        return "empty" if not value.strip() else None
    if isinstance(value, float) and value != value:
        return "NaN"
    pd = sys.modules.get("pandas")
    if pd is not None and value is pd.NA:
        return "missing (NA)"
    if pd is not None and value is pd.NaT:
        return "missing (NaT)"
    return None


def _row_hint(message: str, row: Row, position: int) -> str:
    return f"--over: row {position}: {message} (its columns: {', '.join(row) or 'none'})"


def _keyable(body: dict[str, Any]) -> dict[str, Any]:
    """The body with files still to upload named by path, size and time (their bytes are not in it)."""
    raw = body.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in raw)):
        return body  # text alone (most rows): nothing to stand in for

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        path = getattr(value, "path", None)
        if path is not None:
            stat = path.stat()
            return {"file": str(path), "size": stat.st_size, "mtime": stat.st_mtime_ns}
        return value

    walked: dict[str, Any] = walk(body)
    return walked


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """About how many input tokens a request costs: text at ~4 characters a token, media parts at 258."""
    raw = body.get("input")
    tokens = len(str(body.get("system_instruction") or "")) // 4
    for part in [raw] if isinstance(raw, str) else list(raw or []):
        if isinstance(part, str):
            tokens += len(part) // 4
        elif isinstance(part, dict) and part.get("type") == "text":
            tokens += len(part.get("text", "")) // 4
        else:
            tokens += MEDIA_TOKENS
    return max(1, tokens)


# -- running --------------------------------------------------------------------------------------


class Limiter:
    """How many rows may be in flight: AIMD on the server's signals, a shared pause for Retry-After, and
    first come, first served (``asyncio.Lock`` wakes its waiters in order, so a row sent again after a 429
    queues behind the rows already waiting for a slot, and a storm's failures are spread over the rows
    instead of exhausting one row's attempts)."""

    def __init__(self, maximum: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum = maximum
        self.limit = float(maximum)
        self.lowest = maximum
        self.active = 0
        self.resume_at = 0.0
        self._clock = clock
        self._turn = asyncio.Lock()
        self._freed = asyncio.Event()

    @property
    def allowed(self) -> int:
        return max(1, int(self.limit))

    async def __aenter__(self) -> None:
        async with self._turn:  # only the row at the head of the line waits for a slot
            while True:
                self._freed.clear()
                pause = self.resume_at - self._clock()
                if pause > 0:
                    await asyncio.sleep(pause)
                elif self.active < self.allowed:
                    break
                else:
                    await self._freed.wait()
            self.active += 1

    async def __aexit__(self, *exc: object) -> None:
        self.active -= 1
        self._freed.set()

    def succeeded(self) -> None:
        self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)

    def overloaded(self, retry_after: float | None) -> None:
        self.limit = max(1.0, self.limit / 2.0)
        self.lowest = min(self.lowest, self.allowed)
        if retry_after:
            self.resume_at = max(self.resume_at, self._clock() + retry_after)


@dataclass
class RowOutcome:
    status: str
    """``ok``, ``error`` or ``not run``."""
    answer: dict[str, Any] = field(default_factory=dict)
    """text, data, id, model, input/output tokens (what the cache holds for a successful row)."""
    error: str | None = None
    kind: str | None = None
    """``validation``, ``server``, ``refused`` or ``cut`` for an error; ``not run`` for a row not sent."""
    cached: bool = False
    duplicate: bool = False
    """The same request as an earlier row of this run: answered by that row's one request."""


@dataclass
class RowStats:
    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    """Rows not sent: a value they reference is missing."""
    cached: int = 0
    duplicates: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    """Dollars the fresh rows cost at the run's tier (0 where no price is known)."""
    kinds: Counter[str] = field(default_factory=Counter)
    """Failed rows by kind (``validation``, ``server``, …)."""
    not_run: int = 0
    local: bool = False
    """Some answer came from the embedded local server (which charges nothing)."""
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    concurrency: int | None = None
    """Rows allowed in flight now (None for a batch job: the Batch API schedules its own)."""
    lowest: int | None = None
    stopped: str | None = None
    """Why the run ended early: ``stopped`` by the user, ``budget``, ``server`` (it died), or None."""
    death: str = ""
    """How the server died, when it did."""

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def rate(self) -> float:
        fresh = self.done + self.failed - self.cached - self.duplicates
        return fresh / self.elapsed if self.elapsed > 0 else 0.0

    def eta(self) -> float | None:
        rate = self.rate()
        left = self.total - self.done - self.failed
        return left / rate if rate > 0 else None


async def run_rows(
    request: RowsRequest,
    client: Client,
    cache: RowCache | None,
    progress: Any,
    uploads: dict[str, Any],
    gone: Callable[[], str | None] = lambda: None,
) -> tuple[list[RowOutcome], RowStats]:
    """Run every row (from the cache when it can); outcomes in row order, and the run's figures.

    ``gone``: after a broken connection, how the server died (one line) if it did: the run then stops
    at once (the embedded server's death), instead of retrying rows against nothing."""
    return await _RowRun(request, client, cache, progress, uploads, gone).run()


class _RowRun:
    """One ``--over`` run's moving parts: the outcomes so far, the limiter, and why dispatch stopped.

    As many workers as the concurrency each take the next request and send it; the rows are rendered as
    the workers ask for them, a batch at a time, so the first requests go out at once and the rest render
    while answers are awaited. A worker goes straight from one answer to its next request: nothing waits
    for another task to hand it a slot."""

    def __init__(self, request: RowsRequest, client: Client, cache: RowCache | None, progress: Any,
                 uploads: dict[str, Any], gone: Callable[[], str | None]) -> None:  # fmt: skip
        self.request, self.client, self.cache, self.progress, self.uploads = request, client, cache, progress, uploads
        self.gone = gone
        self.stats = RowStats(total=request.requests, concurrency=request.concurrency, lowest=request.concurrency)
        self.outcomes: list[RowOutcome | None] = [None] * request.requests
        self.works: list[RowWork] = []
        """Every request rendered so far, in order (``outcomes[i]`` answers ``works[i]``)."""
        self.limiter = Limiter(request.concurrency)
        self.halt = asyncio.Event()
        """Set when no more rows may be sent: the budget is spent, or the server died."""
        self.died: list[str] = []
        self.broken: OptionError | None = None
        """A row that could not be rendered (a reference its record lacks): no more rows are sent, the run
        ends when those in flight land, and says so."""
        self.headers = dict(request.template.headers) or None
        self._sender: Any = None
        self._batches = request.chunks(RENDER_BATCH)
        self._ready: deque[list[int]] = deque()
        """Requests rendered and not yet taken by a worker: the outcomes each one answers."""
        self._first: dict[str, list[int]] = {}
        """Each request key of this run: the outcomes its one request answers (identical rows are sent once)."""
        self._workers: set[asyncio.Future[None]] = set()
        self._delivering: set[asyncio.Future[Any]] = set()
        """Workers with a request in flight: never cancelled (after Stop or an interrupt, a row already sent
        still gets its answer cached: it was paid for)."""
        self._unsaved: list[tuple[str, dict[str, Any]]] = []
        """Answers landed and not yet in the row cache (written within :data:`SAVE_WITHIN_SECONDS`)."""
        self._saving: asyncio.TimerHandle | None = None
        self.over = False
        """The run has returned: a worker whose request lands later caches the answer and records nothing."""
        self._closing: Any = None
        self.reserved = 0.0
        """What the rows in flight are expected to spend (``--budget`` counts them before sending more)."""

    async def run(self) -> tuple[list[RowOutcome], RowStats]:
        from .._aio import AioSender

        self.progress.start(self.stats)
        # one event loop sends every row (dozens of threads would spend the kernel's CPU on the GIL)
        self._sender = AioSender(self.request.concurrency, self.client.base_url)
        feeder = asyncio.ensure_future(self._feed())
        try:
            await _until_done_or_halted(feeder, self.halt, self.progress)
        finally:
            self.over = True
            self.halt.set()  # a worker still in flight sends nothing more, not even a retry
            feeder.cancel()
            for task in self._workers - self._delivering:
                task.cancel()
            self._flush()
            self._close_after_deliveries()
            self._ended()
        if self.broken is not None:
            done = self.stats.done - self.stats.cached - self.stats.duplicates
            kept = f"the {done} rows answered before it are cached" if self.cache is not None else "nothing was cached (--no-cache)"
            raise OptionError(f"{self.broken}; {kept}: fix the row and re-run to send only the rest")
        stopped = self.stats.stopped
        outcomes = [o or RowOutcome("not run", error=f"not run: {_why(stopped)}", kind="not run") for o in self.outcomes]
        self.stats.not_run = sum(o.status == "not run" for o in outcomes)
        return outcomes, self.stats

    async def _feed(self) -> None:
        for _ in range(self.request.concurrency):
            task = asyncio.ensure_future(self._work())
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)
        while self._workers:
            await asyncio.wait(list(self._workers))

    async def _work(self) -> None:
        while not self.halt.is_set() and self.broken is None:
            try:
                positions = self._next()
            except OptionError as exc:  # no row after it is sent; those in flight land and are counted
                self.broken = exc
                return
            if positions is None:
                return
            await self._one(positions)

    def _next(self) -> list[int] | None:
        """The next request to send (the outcomes it answers), rendering the next batch of rows when none
        is ready; None when every row is rendered and taken."""
        while not self._ready:
            batch = next(self._batches, None)
            if batch is None:
                return None
            self._take(batch)
        return self._ready.popleft()

    def _take(self, batch: list[RowWork]) -> None:
        """Fill in a batch's cached, skipped and repeated rows; the rest become requests to send."""
        cached = self.cache.get_many([w.key for w in batch if not w.missing]) if self.cache is not None else {}
        for work in batch:
            i = len(self.works)
            self.works.append(work)
            if work.missing:
                self.outcomes[i] = filled = skipped_outcome(work)
            elif work.key in cached:
                self.outcomes[i] = filled = RowOutcome("ok", cached[work.key], cached=True)
            elif (same := self._first.get(work.key)) is not None:  # a row asked already: its answer serves both
                same.append(i)
                first = self.outcomes[same[0]]
                if first is None:
                    continue  # still in flight: filled in when it lands
                self.outcomes[i] = filled = replace(first, duplicate=True)
            else:
                self._first[work.key] = positions = [i]
                self._ready.append(positions)
                continue
            count(self.stats, filled)
        self.progress.update(self.stats)

    def _ended(self) -> None:
        stats = self.stats
        stats.ended = time.monotonic()
        if self.progress.stopped and stats.stopped is None:
            stats.stopped = "stopped"
        if self.died and stats.stopped in (None, "budget"):
            stats.stopped, stats.death = "server", self.died[0]
        self.progress.finish(stats)  # also when the kernel interrupts the run: no live bar is left behind

    def _write(self, positions: list[int]) -> None:
        """``--out``: the answered rows go to the file now (a crash keeps them); with ``-m a,b``, at the end."""
        request = self.request
        if request.results is None or request.models:
            return
        import pandas as pd

        labels = [self.works[i].label for i in positions]
        index = pd.Index(labels, name=getattr(request.index, "name", None))
        outcomes = [o for i in positions if (o := self.outcomes[i]) is not None]
        request.results.append(frame_of(request.template.schema, index, outcomes, flatten=request.flatten))

    def _spent(self) -> float:
        """What the run has spent in the budget's unit: tokens, or dollars for ``--budget $N``."""
        return self.stats.cost if self.request.budget_cost is not None else self.stats.tokens

    def _estimate(self, work: RowWork) -> float:
        """What a row will likely spend: the average of the rows sent so far, or twice its input at first."""
        request = self.request
        if request.budget is None and request.budget_cost is None:
            return 0
        stats = self.stats
        sent = stats.done + stats.failed - stats.cached - stats.duplicates
        if sent > 0 and self._spent():
            return self._spent() / sent
        tokens = estimate_input_tokens(work.body)
        if request.budget_cost is not None:
            return request.cost(work.model, tokens, tokens) or 0.0
        return 2 * tokens

    def _admit(self, estimate: float) -> bool:
        """Whether a row may be sent now: ``--budget`` holds what is spent plus what is in flight."""
        limit = self.request.budget_cost if self.request.budget_cost is not None else self.request.budget
        if limit is not None and self._spent() + self.reserved + estimate > limit:
            self.stats.stopped = "budget"
            self.halt.set()
            return False
        self.reserved += estimate
        return True

    def _gone_once(self) -> str | None:
        if not self.died and (line := self.gone()):
            self.died.append(line)
        return self.died[0] if self.died else None

    def _close_after_deliveries(self) -> None:
        """The HTTP client closes once the last request in flight lands (after Stop or an interrupt, a row
        already sent still gets its answer cached: it was paid for)."""
        deliveries, sender = set(self._delivering), self._sender

        async def close() -> None:
            await asyncio.gather(*deliveries, return_exceptions=True)
            self._flush()
            await sender.aclose()

        self._closing = asyncio.ensure_future(close())  # held: the loop keeps only a weak reference to a task

    async def _send(self, work: RowWork) -> RowOutcome:
        """One row's request, sent by the worker itself (a task of its own per row would cost each slot a turn
        of the event loop); the worker is marked as delivering meanwhile, so it is not cancelled."""
        worker = asyncio.current_task()
        assert worker is not None
        self._delivering.add(worker)
        try:
            return await self._deliver(work)
        finally:
            self._delivering.discard(worker)

    async def _deliver(self, work: RowWork) -> RowOutcome:
        raw = work.body["input"]
        files = isinstance(raw, list) and any(getattr(v, "path", None) is not None for v in raw)
        sent_input = await asyncio.to_thread(as_sent, raw, self.client, self.uploads) if files else raw
        interaction = await self.client.interactions.acreate(self._sender, extra_headers=self.headers,
                                                             timeout=self.request.timeout, **{**work.body, "input": sent_input})  # fmt: skip
        outcome = outcome_of(interaction, self.request.template)
        if self.cache is not None and outcome.status == "ok":
            self._save(work.key, outcome.answer)
        return outcome

    def _save(self, key: str, answer: dict[str, Any]) -> None:
        self._unsaved.append((key, answer))
        if len(self._unsaved) >= SAVE_BATCH:
            self._flush()
        elif self._saving is None:
            self._saving = asyncio.get_running_loop().call_later(SAVE_WITHIN_SECONDS, self._flush)

    def _flush(self) -> None:
        """Write the answers that landed to the row cache, in one transaction."""
        if self._saving is not None:
            self._saving.cancel()
            self._saving = None
        if self._unsaved and self.cache is not None:
            self.cache.put_many(self._unsaved)
        self._unsaved = []

    async def _one(self, positions: list[int]) -> None:
        work = self.works[positions[0]]
        estimate = self._estimate(work)
        outcome = await _attempts(lambda: self._send(work), self.limiter, self.halt,
                                  self._gone_once, self.request, admit=lambda: self._admit(estimate))  # fmt: skip
        if outcome is None or self.over:
            return  # dispatch stopped before this row was sent ("not run"), or the run ended while it was in flight
        self.reserved -= estimate
        stats = self.stats
        for n, i in enumerate(positions):  # identical rows: one request, one answer for each of them
            self.outcomes[i] = each = outcome if n == 0 else replace(outcome, duplicate=True)
            count(stats, each)
        answer = outcome.answer
        stats.cost += self.request.cost(work.model, int(answer.get("input_tokens") or 0),
                                        int(answer.get("output_tokens") or 0)) or 0.0  # fmt: skip
        self._write(positions)
        stats.concurrency, stats.lowest = self.limiter.allowed, self.limiter.lowest
        if outcome.kind == "quota":
            stats.stopped = "quota"
        limit = self.request.budget_cost if self.request.budget_cost is not None else self.request.budget
        if limit is not None and self._spent() >= limit:
            stats.stopped = "budget"
            self.halt.set()
        self.progress.update(stats)


def _why(stopped: str | None) -> str:
    return {"budget": "the --budget was reached", "stopped": "stopped by you", "server": "the server stopped",
            "quota": "the API quota is exceeded; re-run when it resets"}.get(stopped or "", "cancelled")  # fmt: skip


async def _until_done_or_halted(rows: asyncio.Future[None], halt: asyncio.Event, progress: Any) -> None:
    """Wait for every row (the feeder ends with the last), or until the budget is spent or the user presses Stop."""
    while not rows.done():
        await asyncio.wait((rows,), timeout=0.1)
        if halt.is_set() or progress.stopped:
            return


def skipped_outcome(work: RowWork) -> RowOutcome:
    return RowOutcome("skipped", error=f"not sent: {work.missing} (--keep-missing sends such rows)", kind="missing")


def count(stats: RowStats, outcome: RowOutcome) -> None:
    if outcome.status == "ok":
        stats.done += 1
    elif outcome.status == "skipped":
        stats.skipped += 1
    elif outcome.status == "not run":
        stats.not_run += 1
    else:
        stats.failed += 1
        stats.kinds[outcome.kind or "error"] += 1
    stats.cached += outcome.cached
    if not stats.local and str(outcome.answer.get("model") or "").startswith("local:"):
        stats.local = True
    stats.duplicates += outcome.duplicate
    if not (outcome.cached or outcome.duplicate):  # tokens this run paid for, once per request
        stats.input_tokens += int(outcome.answer.get("input_tokens") or 0)
        stats.output_tokens += int(outcome.answer.get("output_tokens") or 0)


async def _attempts(
    send: Callable[[], Any],
    limiter: Limiter,
    halt: asyncio.Event,
    gone: Callable[[], str | None],
    request: RowsRequest,
    admit: Callable[[], bool] = lambda: True,
) -> RowOutcome | None:
    """One row, retried on overload (429, 503, dropped connections) within :data:`MAX_ATTEMPTS`; None when
    dispatch stopped before it was sent, or ``admit`` (the budget) says no when its turn comes."""
    last = ""
    errors = 0
    for attempt in range(MAX_ATTEMPTS):
        if halt.is_set():
            return None
        async with limiter:
            if halt.is_set() or (attempt == 0 and not admit()):
                return None
            try:
                outcome: RowOutcome = await send()
            except APIStatusError as exc:
                last = describe_api_error(exc, "the server")
                if exc.code == "quota_exceeded":  # no later row can pass today: none is sent
                    halt.set()
                    return RowOutcome("error", error=one_line(last), kind="quota")
                if not is_retryable_status(exc.status_code, exc.response.headers, exc.code):
                    return RowOutcome("error", error=one_line(last), kind="server")
                overload = exc.status_code in (408, 429, 503)
                errors += not overload
                if errors >= MAX_ERROR_ATTEMPTS:
                    return RowOutcome(
                        "error", error=one_line(f"{last} (after {attempt + 1} attempts)"), kind="server"
                    )
                if overload:
                    limiter.overloaded(parse_retry_after(exc.response.headers))
                delay = retry_delay(attempt, exc.response.headers)  # Retry-After when the server gives one
            except APIConnectionError as exc:  # a timeout or a dropped connection: overload too
                died = gone()
                if died:  # nobody left to answer: this row says why, and dispatch stops
                    halt.set()
                    return RowOutcome("error", error=one_line(died), kind="server")
                last = str(exc) or type(exc).__name__
                if isinstance(exc, APITimeoutError):  # slow is not lost: a second request could be billed twice
                    return RowOutcome("error", error=_timed_out(request), kind="timeout")
                limiter.overloaded(None)
                delay = retry_delay(attempt)
            else:
                limiter.succeeded()
                return outcome
        await asyncio.sleep(delay)
    return RowOutcome("error", error=one_line(f"{last} (after {MAX_ATTEMPTS} attempts)"), kind="server")


def _timed_out(request: RowsRequest) -> str:
    flex = request.service_tier == "flex"
    return (f"no {'flex ' if flex else ''}answer within {request.timeout:g} s (the client's timeout); not sent again, "
            "since the first request may still be answered and billed (re-run the cell to try the row again"
            + ("" if flex else "; a server that answers one row at a time needs a lower --concurrency") + ")")


def outcome_of(interaction: Interaction, template: CellRequest) -> RowOutcome:
    """What one row's answer becomes: its text or schema data, or an error saying what was wrong."""
    usage = interaction.usage
    answer = {"text": interaction.text, "id": interaction.id, "model": getattr(interaction, "served_by", None) or template.model,
              "input_tokens": (usage.total_input_tokens or 0) if usage else 0,
              "output_tokens": (usage.total_output_tokens or 0) if usage else 0}  # fmt: skip
    if not interaction.answered or interaction.status == "requires_action":  # rows offer no tools to act on
        reason = "; ".join(e.message for e in interaction.errors or []) or "no reason given"
        return RowOutcome(
            "error", answer, error=one_line(f"ended {interaction.status}: {reason}"), kind="server"
        )
    return checked(answer, template.schema, cut_note(template.max_output_tokens, interaction))


def checked(answer: dict[str, Any], schema: Schema | None, cut: str | None) -> RowOutcome:
    """An answer (live row or batch result) checked: ``ok`` with its schema data, or why not (cut, validation)."""
    if schema is None:
        return RowOutcome("error", answer, error=one_line(cut), kind="cut") if cut else RowOutcome("ok", answer)
    data, problem = structured(answer["text"], schema, cut)
    if problem is not None:
        return RowOutcome("error", answer, error=one_line(problem.message), kind=problem.kind)
    dump = getattr(data, "model_dump", None)
    answer["data"] = dump(mode="json") if callable(dump) else data
    return RowOutcome("ok", answer)


# -- the result -----------------------------------------------------------------------------------

_DTYPES = {"integer": "Int64", "number": "Float64", "boolean": "boolean", "string": "string"}


def to_frame(request: RowsRequest, outcomes: list[RowOutcome]) -> Any:
    """The result DataFrame on the input's index: schema columns (typed as the schema says) or ``text``,
    then ``_status``, ``_error``, ``_id`` and token columns."""
    per_row = max(1, len(request.models))
    positions = list(request.positions)
    index = request.index.take(positions) if hasattr(request.index, "take") else [request.index[p] for p in positions]
    if not request.models:
        return frame_of(request.template.schema, index, outcomes, flatten=request.flatten)
    frames = [frame_of(request.template.schema, index, outcomes[k::per_row], flatten=request.flatten)
              for k in range(per_row)]  # fmt: skip
    return side_by_side(frames, list(request.models))


def side_by_side(frames: list[Any], models: list[str]) -> Any:
    """One frame per model as one: each answer column, then ``_status`` and ``_error``, as ``name@model``."""
    import pandas as pd

    fields = [c for c in frames[0].columns if not str(c).startswith("_")]
    columns = {f"{name}@{model}": frame[name] for name in [*fields, "_status", "_error"]
               for model, frame in zip(models, frames, strict=True)}  # fmt: skip
    return pd.DataFrame(columns, index=frames[0].index)


def agreement(frame: Any, models: tuple[str, ...]) -> dict[str, float]:
    """Per answer field, the share of rows every model answered where all of them agree (compared as
    ``--check`` compares)."""
    from .check import normal

    fields = [c.rsplit("@", 1)[0] for c in frame.columns if c.endswith(f"@{models[0]}") and not c.startswith("_")]
    shares = {}
    for name in fields:
        values = frame[[f"{name}@{m}" for m in models]].astype("object")
        answered = values.notna().all(axis=1)
        if answered.any():
            same = values[answered].apply(lambda row: len({str(normal(v)) for v in row}) == 1, axis=1)
            shares[name] = float(same.mean())
    return shares


def frame_of(schema: Any, index: Any, outcomes: list[RowOutcome], *, flatten: bool = False) -> Any:
    """:func:`to_frame` from its parts (``load`` rebuilds a batch's frame from the journal with them)."""
    import pandas as pd

    root: dict[str, Any] = schema.json_schema if schema is not None else {}
    columns = _columns(root, root.get("properties") or {}, (), flatten) if schema is not None else []
    properties = {name: spec for name, _, spec in columns}
    records = []
    for outcome in outcomes:
        answer = outcome.answer
        record: dict[str, Any] = {}
        if schema is not None:
            data = answer.get("data") if outcome.status == "ok" else None
            values = data if isinstance(data, dict) else {}
            record.update({name: _at(values, path) for name, path, _ in columns})
        else:
            record["text"] = answer.get("text") if outcome.status == "ok" else None
        # a failed row keeps what the model said, so a schema miss can be read and the prompt fixed
        raw = answer.get("text") if outcome.status == "error" and answer.get("text") else None
        record.update(_status=outcome.status, _error=outcome.error, _raw=raw, _id=answer.get("id"),
                      _input_tokens=answer.get("input_tokens"), _output_tokens=answer.get("output_tokens"))  # fmt: skip
        records.append(record)
    frame = pd.DataFrame.from_records(records, index=index if hasattr(index, "name") else pd.Index(index))
    for name, spec in properties.items():
        dtype = _dtype_of(spec, pd)
        if dtype is not None:
            with contextlib.suppress(TypeError, ValueError):  # a value the type cannot hold: kept as it came
                frame[name] = frame[name].astype(dtype)
    if "text" in frame.columns:
        frame["text"] = frame["text"].astype("string")
    for name in ("_status", "_error", "_raw", "_id"):  # one missing-value convention: <NA>, whatever the outcome
        frame[name] = frame[name].astype("string")
    for name in ("_input_tokens", "_output_tokens"):
        frame[name] = frame[name].astype("Int64")
    return frame


def _columns(root: dict[str, Any], properties: dict[str, Any], path: tuple[str, ...],
             flatten: bool) -> list[tuple[str, tuple[str, ...], Any]]:  # fmt: skip
    """The frame's schema columns: (name, path into the answer, property schema); with ``flatten``, an
    object property's own properties instead of it, named ``outer.inner``."""
    found: list[tuple[str, tuple[str, ...], Any]] = []
    for name, spec in properties.items():
        spec = _resolved(root, spec)
        inner = spec.get("properties") if isinstance(spec, dict) else None
        if flatten and isinstance(inner, dict) and inner:
            found += _columns(root, inner, (*path, name), flatten)
        else:
            found.append((".".join((*path, name)), (*path, name), spec))
    return found


def _resolved(root: dict[str, Any], spec: Any) -> Any:
    """A property schema with its ``$ref`` (pydantic's nested models) or single non-null ``anyOf`` followed."""
    for _ in range(8):  # refs to refs, but never a loop
        if not isinstance(spec, dict):
            return spec
        if "$ref" in spec and str(spec["$ref"]).startswith("#/"):
            target: Any = root
            for key in str(spec["$ref"])[2:].split("/"):
                target = target.get(key, {}) if isinstance(target, dict) else {}
            spec = target
            continue
        choices = [s for s in spec.get("anyOf") or [] if not (isinstance(s, dict) and s.get("type") == "null")]
        if len(choices) == 1 and isinstance(choices[0], dict) and "$ref" in choices[0]:
            spec = choices[0]
            continue
        return spec
    return spec


def _at(values: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        values = values.get(key) if isinstance(values, dict) else None
    return values


def _dtype_of(spec: Any, pd: Any) -> Any:
    """The pandas dtype a JSON-schema property asks for: nullable ints, floats, booleans and strings
    (``Optional[...]`` included), a category for an enum (``Literal``); None to leave it as it comes."""
    if not isinstance(spec, dict):
        return None
    choices = [s for s in spec.get("anyOf") or spec.get("oneOf") or [] if not (isinstance(s, dict) and s.get("type") == "null")]
    if len(choices) == 1:
        return _dtype_of(choices[0], pd)
    enum = spec.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        return pd.CategoricalDtype(categories=enum)
    kind = spec.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    return _DTYPES.get(str(kind)) if kind else None


def summary_line(stats: RowStats, request: RowsRequest) -> str:
    """Rows ok / failed by kind, what came from the cache, wall time, tokens, cost, concurrency (from the
    run's figures: a big batch run's outcomes are never all in memory)."""
    failed = {k: n for k, n in stats.kinds.items() if k not in ("not run", "missing")}
    models = len(request.models)
    rows = stats.total // max(1, models)
    bits = [f"{rows:,} row{'s' if rows != 1 else ''}{f' × {models} models' if models else ''}: {stats.done:,} ok"]
    if failed:
        bits[0] += (
            f", {sum(failed.values()):,} failed ("
            + ", ".join(f"{n:,} {k}" for k, n in sorted(failed.items()))
            + ")"
        )
    if stats.not_run:
        bits[0] += f", {stats.not_run:,} not run ({_why(stats.stopped)})"
    if stats.skipped:
        bits[0] += f", {stats.skipped:,} skipped (missing input)"
    if stats.cached:
        bits.append(f"{stats.cached:,} from the cache")
    if stats.duplicates:
        bits.append(f"{stats.duplicates:,} identical to another row (sent once)")
    bits.append(f"{stats.elapsed:.1f} s")
    bits.append(f"{stats.input_tokens:,} in / {stats.output_tokens:,} out tokens")
    bits += _spend(stats, request)
    if stats.lowest is not None and stats.lowest < request.concurrency:
        bits.append(f"concurrency {request.concurrency} (lowered to {stats.lowest} by the server)")
    if request.total > rows:
        bits.append(f"{'--sample' if request.sampled else '--limit'}: {rows:,} of {request.total:,} rows")
    return " · ".join(bits)


def _spend(stats: RowStats, request: RowsRequest) -> list[str]:
    """What the run cost at the run's tier, and how that stands against ``--budget``."""
    from ..prices import money, price_of

    bits = []
    if price_of(request.template.model, request.prices) is not None and stats.tokens:
        bits.append(f"{money(stats.cost)} at {request.tier} prices" + (" had the API answered" if stats.local else ""))
    if request.budget is not None:
        bits.append(f"{stats.tokens:,} of the {request.budget:,}-token budget")
    if request.budget_cost is not None:
        bits.append(f"{money(stats.cost)} of the {money(request.budget_cost)} budget")
    return bits


def dry_run_of(request: RowsRequest, cache: RowCache | None) -> RowsDryRun:
    """``--over … --dry-run``: the first row's request, how many requests, about how many tokens, and what
    they would cost on each tier (the rows are read a chunk at a time, never all at once)."""
    from ..prices import tier_costs
    from ..render.result import RowsDryRun

    first: RowWork | None = None
    requests = cached = tokens = fresh_tokens = 0
    for chunk in request.chunks():
        first = first or chunk[0]
        hits = cache.get_many([w.key for w in chunk]) if cache is not None else {}
        for work in chunk:
            spent = estimate_input_tokens(work.body)
            tokens += spent
            fresh_tokens += 0 if work.key in hits else spent
        requests += len(chunk)
        cached += len(hits)
    assert first is not None
    sent = requests - cached
    per_row, basis = estimate_output_tokens(request.template)
    line = (f"{requests:,} request{'s' if requests != 1 else ''} (one per row"
            f"{f', of {request.total:,}' if request.total > requests else ''}); {cached:,} answered by the cache, "
            f"{sent:,} would be sent{'' if request.batch else f', {request.concurrency} at a time'} · about {tokens:,} input "
            f"tokens in all (~4 characters a token, {MEDIA_TOKENS} a media part)")  # fmt: skip
    costs = tier_costs(request.template.model, fresh_tokens, sent * per_row, request.prices)
    notes = [f"row {first.label!r} of --over {request.source}", line,
             f"the {sent:,} rows to send: ~{fresh_tokens:,} in + ~{sent * per_row:,} out tokens ({basis}) ≈ {costs}"]  # fmt: skip
    return RowsDryRun(first.body, request.template.plan, notes, requests=requests, estimated_tokens=tokens,
                      concurrency=request.concurrency)  # fmt: skip


def _leaves(schema: Any) -> int:
    """How many values an answer to ``schema`` holds (its scalar properties, however nested)."""
    if isinstance(schema, list):
        return sum(_leaves(item) for item in schema)
    if not isinstance(schema, dict):
        return 0
    if schema.get("type") in ("string", "integer", "number", "boolean") or "enum" in schema:
        return 1
    return sum(_leaves(value) for key, value in schema.items() if key in ("properties", "items", "anyOf", "$defs")
               or (isinstance(value, dict) and key not in ("required",)))  # fmt: skip


def estimate_output_tokens(template: CellRequest) -> tuple[int, str]:
    """About how many tokens a row's answer takes, and on what that guess rests."""
    cap = template.max_output_tokens
    if template.schema is not None:
        fields = _leaves(template.schema.json_schema)
        guess = 6 + 8 * max(1, fields)
        basis = f"~{guess} a row for a schema of {fields} field{'s' if fields != 1 else ''}"
    else:
        guess, basis = 150, "~150 a row for free text"
    if cap and cap < guess:
        return cap, f"--max-tokens {cap} a row"
    return guess, basis
