"""Executing one checked cell request: unary, streamed, or in the background.

There is one path for a turn, the coroutine :meth:`Runner.run_async`. A kernel awaits it (so the event
loop, and the Stop button, stay live); everywhere else :meth:`Runner.run` drives the same coroutine on
a private event loop in a worker thread, so a blocking call never depends on what loop the caller has.
:meth:`Runner.complete` is the single place where an answer becomes a turn: checked, committed to its
chain with its usage and bound to ``-o`` in one session commit; foreground and background runs and
the tool loop all end there. Client errors pass through; the magic words them.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from .._threads import in_thread, run_blocking
from ..answers import answered_by, cut_note
from ..chains import Turn
from ..errors import InteractionEnded, MagicError, OptionError, SchemaMismatch, Stopped
from .stream import feed, within
from .uploads import upload_pending

if TYPE_CHECKING:
    from .._client import Client
    from ..render.live import LiveView, Views
    from ..render.result import InteractionResult
    from ..request import CellRequest
    from ..session import Commit, Session
    from ..tools import Toolbox, Transcript
    from ..types.interaction import Interaction
    from .handle import BackgroundRun
    from .rows import RowsRequest

__all__ = ["Runner"]

BACKGROUND_POLL_SECONDS = 1.0
"""How often a background run is polled when its stream stalls (the stream itself is real time)."""


class ToolLoopError(MagicError):
    """The tool loop hit ``--max-steps``."""


class _Stop(Exception):
    """The user stopped the answer mid-stream: carries what arrived, for the partial result."""

    def __init__(self, how: str, transcript: Transcript) -> None:
        super().__init__(how)
        self.how = how
        self.transcript = transcript


class _Partial(Exception):
    """One interaction stopped mid-stream (becomes a :class:`_Stop` carrying the whole turn so far)."""

    def __init__(self, how: str, interaction: Interaction) -> None:
        super().__init__(how)
        self.how = how
        self.interaction = interaction


class Runner:
    """Runs cell requests against the session's backend and commits their turns."""

    def __init__(self, session: Session, views: Views) -> None:
        self.session = session
        self.views = views

    def run(self, request: CellRequest | RowsRequest) -> Any:
        """The blocking form (terminal IPython, scripts, magics stacked under others)."""
        return run_blocking(self.run_async(request, interactive=False))

    async def run_async(self, request: CellRequest | RowsRequest, *, interactive: bool = True) -> Any:
        """The turn: upload what must be, send, follow the answer, complete it."""
        from .rows import RowsRequest

        try:
            if isinstance(request, RowsRequest) or request.dry_run:
                # no turn to commit: what the run made is bound here, when it ends in the foreground
                # (a --batch job binds its frame when the job ends, through the same Session.bind)
                if isinstance(request, RowsRequest):
                    made = await self._rows(request, interactive)
                else:
                    made = self._dry_run(request)
                if _binds_now(made):
                    self.session.bind(request.out, getattr(made, "frame", made))
                return made
            client = self.session.backend().client
            parts = await in_thread(lambda: upload_pending(client, list(request.parts), self.session.uploads))  # noqa: E501
            body = request.body(parts)
            if request.background:
                return await self._start_background(request, client, body, parts)
            toolbox = await self._with_mcp(request, body)
            view = self.views.live(request, interactive=interactive)
            try:
                with view:
                    transcript = await self._answer(request, client, body, view, toolbox)
            except _Stop as stop:  # out of the live view first: what follows it replaces it
                self._keep_partial(request, stop.transcript, stop.how, shown=view.printed)
                raise Stopped(
                    f"{stop.how}: the answer so far is kept above and in %interact last; the chain is unchanged"
                ) from None
            result = self.complete(request, parts, transcript)
            result.printed = view.printed
            return result
        finally:
            for notice in self.session.pop_notices():
                print(notice)

    def _dry_run(self, request: CellRequest) -> Any:
        from ..render.result import DryRun

        return DryRun(request.body(), request.plan, request.notes)

    # -- sending ----------------------------------------------------------------------------------

    async def _with_mcp(self, request: CellRequest, body: dict[str, Any]) -> Toolbox | None:
        """The cell's toolbox, with the tools of the ``--mcp`` servers the kernel bridges (connected once)."""
        if not request.mcp_bridged:
            return request.toolbox
        from ..tools import Toolbox, mcp_tools

        bridge = self.session.mcp()
        functions = list(request.toolbox.functions) if request.toolbox else []
        for target in request.mcp_bridged:
            info = await in_thread(lambda t=target: bridge.connect(t))  # type: ignore[misc]
            functions += mcp_tools(bridge, info, request.mcp_allowed)
        names = [f.name for f in functions]
        if len(set(names)) < len(names):
            clash = sorted({n for n in names if names.count(n) > 1})
            raise OptionError(
                f"--mcp: more than one tool is called {', '.join(clash)}: pick with --mcp-tools"
            )
        old = request.toolbox
        toolbox = Toolbox(functions, old.builtins if old else [], timeout=old.timeout if old else bridge.call_timeout,
                          namespace_options=old.namespace_options if old else None)  # fmt: skip
        server_side = [t for t in body.get("tools", []) if t.get("type") == "mcp_server"]
        body["tools"] = toolbox.declarations() + server_side
        return toolbox

    async def _answer(
        self,
        request: CellRequest,
        client: Client,
        body: dict[str, Any],
        view: LiveView,
        toolbox: Toolbox | None,
    ) -> Transcript:
        """One answer, or with ``--tools`` the loop of answers and tool results until the model is done."""
        from ..tools import ToolLoopCapped, Transcript, tool_loop

        transcript = Transcript()  # every round so far: what a stop keeps

        async def send(next_body: dict[str, Any]) -> Any:
            if view.stopped and transcript.interactions:  # Stop while the kernel ran tools: no further round
                raise _Stop("stopped", transcript)
            try:
                return await self._send(request, client, next_body, view)
            except _Partial as partial:
                transcript.add(partial.interaction)
                raise _Stop(partial.how, transcript) from None

        if toolbox is None:
            transcript.add(await send(body))
            return transcript
        from .._exceptions import BadRequestError

        try:
            return await tool_loop(body, send=send, toolbox=toolbox, max_steps=request.max_steps, transcript=transcript,
                                   approve=view.approve, on_results=view.tool_results)  # fmt: skip
        except BadRequestError as exc:
            if not (toolbox.functions and toolbox.builtins):
                raise
            from ..errors import describe_api_error

            raise ToolLoopError(
                f"{describe_api_error(exc, client.base_url)}; some models refuse built-in tools together with "
                "functions: try them in separate cells"
            ) from None
        except ToolLoopCapped as capped:
            self.session.remember(self._result(request, capped.transcript))
            asked = ", ".join(sorted({c.name for c in capped.transcript.interactions[-1].function_calls}))
            raise ToolLoopError(
                f"--max-steps {capped.max_steps} reached and the model still asks for {asked}: raise --max-steps, "
                f"or check the tools' results in %interact last (chain {request.chain!r} unchanged)"
            ) from None

    async def _send(
        self, request: CellRequest, client: Client, body: dict[str, Any], view: LiveView
    ) -> Interaction:
        """One interaction, streamed into the live view (or not); a stop raises :class:`_Stop`."""
        headers = dict(request.headers) or None
        timeout = request.timeout
        if not request.stream:
            interaction: Interaction = await within(
                timeout,
                in_thread(lambda: client.interactions.create(extra_headers=headers, timeout=timeout, **body)),
            )
            view.finish(interaction)
            return interaction
        # a stream that opens after a Stop, a time-out or an interrupt is closed, not left dangling
        events = await within(timeout, in_thread(
            lambda: client.interactions.create(stream=True, extra_headers=headers, timeout=timeout, **body),
            abandoned=lambda opened: opened.close(),
        ))  # fmt: skip
        with events:
            view.attach(events)
            interrupted = await feed(events, view.event, idle=timeout)
            interaction = events.interaction
            view.finish(interaction)
        if view.stopped or interrupted:
            raise _Partial("interrupted" if interrupted else "stopped", interaction)
        return interaction

    def _keep_partial(self, request: CellRequest, transcript: Transcript, how: str, *, shown: bool) -> None:
        """A stopped answer stays visible, marked as such, and in ``%interact last``; nothing is committed."""
        partial = self._result(request, transcript)
        partial.outcome = how
        partial.chain = partial.turn = None  # the footer names no turn it did not join
        partial.notes.append(f"{how} by you: partial answer, not added to chain {request.chain}")
        partial.printed = shown
        self.session.remember(partial)
        self.views.show(partial)

    def _result(self, request: CellRequest, transcript: Transcript) -> InteractionResult:
        from ..render.result import InteractionResult

        result = InteractionResult(transcript.interactions, model=request.model, chain=request.chain,
                                   turn=request.plan.position + 1, stored=request.store,
                                   schema_name=request.schema.name if request.schema else None)  # fmt: skip
        result.tool_calls = list(transcript.calls)
        result.preview_px = request.preview_px
        result.save_dir = request.save_dir
        result.prompt = request.prompt
        return result

    # -- --over: one stateless interaction per row ------------------------------------------------

    async def _rows(self, request: RowsRequest, interactive: bool) -> Any:
        """Every row (cached ones from the cache), then the DataFrame: bound to ``-o`` unless stopped."""
        from ..types.interaction import Usage
        from .rows import dry_run_of, run_rows

        cache = self.session.row_cache() if request.use_cache else None
        if request.dry_run:
            return await in_thread(lambda: dry_run_of(request, cache))
        if request.batch:
            return await self._batch(request)
        client = self.session.backend().client
        progress = self.views.rows(interactive=interactive)
        try:
            outcomes, stats = await run_rows(request, client, cache, progress, self.session.uploads,
                                             gone=lambda: self.session.server_death(wait=0.2, short=True))  # fmt: skip
        except (asyncio.CancelledError, KeyboardInterrupt):
            kept = "the rows that finished are cached" if cache else "nothing was cached (--no-cache)"
            raise Stopped(f"interrupted: {kept}; re-run the cell to send only the rest") from None
        result = await self._rows_result(request, outcomes, stats)
        paid = [(request.model_of(n), o.answer) for n, o in enumerate(outcomes)
                if o.answer and not (o.cached or o.duplicate)]  # paid for now, by the model each went to  # fmt: skip
        for model, answer in paid:
            self.session.add_usage(answered_by(model, answer.get("model")), Usage(total_input_tokens=answer.get("input_tokens"),
                                                total_output_tokens=answer.get("output_tokens")))  # fmt: skip
        self.session.remember(result)
        if stats.stopped == "server":
            self.views.show(result)
            kept = f"the {stats.done} answered rows are cached" if cache is not None else "nothing was cached"
            raise MagicError(f"{stats.death}; {kept}; re-run the cell to send only the rest (%interact last shows them)")
        if stats.stopped == "stopped":
            self.views.show(result)
            kept = f"the {stats.done} finished rows are cached" if cache is not None else "nothing was cached"
            # the frame so far is bound (rows not run say so), and the cell still raises: Run All stops here
            self.session.bind(request.out, getattr(result, "frame", result))
            bound = f"; the partial frame is bound to {request.out!r}" if request.out else ""
            raise Stopped(f"stopped by you: {kept}{bound}; re-run the cell to send only the rest")
        return result

    async def _batch(self, request: RowsRequest) -> Any:
        from .batch import start_batch

        stop = threading.Event()
        try:
            return await in_thread(lambda: start_batch(request, self.session, self.views, stop))
        except (asyncio.CancelledError, KeyboardInterrupt):
            stop.set()  # the requests being written: nothing is sent
            raise Stopped("interrupted while the requests were written: nothing was sent") from None

    @staticmethod
    async def _rows_result(request: RowsRequest, outcomes: list[Any], stats: Any) -> Any:
        """The frame, its summary, ``--out`` finished; past ``max_frame_rows`` with ``--out``, a handle on the file."""
        from ..render.result import RowsOnDisk, RowsResult
        from .rows import agreement, scored, summary_line, to_frame

        frame = to_frame(request, outcomes)
        summary = summary_line(stats, request)
        if request.results is not None:
            written = await in_thread(lambda: request.results.finish(frame))
            summary += f" · {written} rows written to {request.results.path}"
        if request.models:
            summary += " · models agree: " + ", ".join(f"{k} {v:.0%}" for k, v in agreement(frame, request.models).items())
        if request.results is not None and len(frame) > request.max_frame_rows:  # -o gets the file, not the frame
            return RowsOnDisk(request.results.path, len(frame), summary, stats)
        return RowsResult(frame, summary, outcomes, stats, check=scored(request, frame))

    # -- the background ---------------------------------------------------------------------------

    async def _start_background(
        self, request: CellRequest, client: Client, body: dict[str, Any], parts: list[Any]
    ) -> BackgroundRun:
        from .handle import BackgroundRun, watch

        headers = dict(request.headers) or None
        started = await in_thread(lambda: client.interactions.create(extra_headers=headers, **body))
        run = BackgroundRun(started.id, request.model, request.out, request.chain)
        self._journal(request, client, run)
        view = self.views.background(run, cancel=lambda: client.interactions.cancel(started.id))
        self.session.add_run(run)
        watch(run, lambda: self._follow_to_end(request, client, parts, run, view), view=view, base_url=client.base_url)
        return run

    def _journal(self, request: CellRequest, client: Client, run: BackgroundRun) -> None:
        """On disk, so a kernel restart does not lose the run (``%interact wait`` lists it)."""
        from ..journal import JournalEntry

        self.session.journal_start(JournalEntry(run.id, "interaction", request.model, str(client.base_url),
                                                out=request.out, chain=request.chain))  # fmt: skip

    def _follow_to_end(self, request: CellRequest, client: Client, parts: list[Any], run: BackgroundRun, view: Any) -> Any:
        """The run followed to its end (progress to the view as it goes), then completed like any turn."""
        from ..tools import Transcript
        from .follow import follow

        def on_progress(progress: Any) -> None:
            run.progress = progress
            run.status = progress.status
            view.progress(progress)

        final = run_blocking(follow(client, run.id, on_progress=on_progress, headers=dict(request.headers) or None,
                                    stall=request.timeout, poll_interval=BACKGROUND_POLL_SECONDS, stop=run.stopping))  # fmt: skip
        run.status = final.status or "?"
        self.session.journal_end(run.id, run.status)  # known to have ended, whatever completing it says
        transcript = Transcript()
        transcript.add(final)
        return self.complete(request, parts, transcript)

    # -- the end of every turn --------------------------------------------------------------------

    def complete(self, request: CellRequest, parts: list[Any], transcript: Transcript) -> InteractionResult:
        """Check the answer, then commit the turn to its chain, add its usage and bind ``-o`` (one session
        commit): the only place a turn is committed. (``--over``, ``--batch`` and ``--dry-run`` commit no
        turn; their ``-o`` is bound through :meth:`Session.bind` as they end.)"""
        final = transcript.interactions[-1]
        result = self._result(request, transcript)
        result.notes.extend(request.notes)
        self.session.remember(result)
        if not final.answered:
            if final.status == "cancelled" and not final.errors:  # a Cancel, the user's own: said neutrally
                raise Stopped(f"cancelled: no answer was kept (chain {request.chain!r} unchanged)", kind="cancelled")
            reason = "; ".join(f"{e.message} ({e.code})" if e.code else e.message for e in final.errors or []) or "no reason given"
            raise InteractionEnded(
                f"the interaction ended {final.status}: {reason} (chain {request.chain!r} unchanged)"
            )
        cut = cut_note(request.max_output_tokens, final)
        if request.schema is not None:
            result.data = _structured(final.text, request, cut)
        if cut:
            result.notes.append(cut)
        turn = _turn(request, parts, transcript, result.answered_by)
        # every commit checks that no other turn (a background run's) landed meanwhile; if one did, this
        # turn is kept aside (restorable), never dropped or allowed to drop the other one silently
        usage = [(answered_by(request.model, interaction.served_by), interaction.usage)
                 for interaction in transcript.interactions]  # fmt: skip
        commit = self.session.commit(request.plan, turn, new=request.new, out=request.out, result=result, usage=usage)
        result.notes.extend(_commit_notes(request, commit))
        if commit.added:
            if commit.rewind is not None and not request.new:  # a re-run: the turns after it say so, in place
                self.views.dropped(request.chain, [t.number for t in commit.rewind.dropped[1:]])
            self.views.keep_updatable(result, (request.chain, turn.number))
        return result


def _binds_now(made: Any) -> bool:
    """A foreground result binds ``-o`` as its cell ends: an ``--over`` frame, a dry run. A batch job
    binds its frame when the job ends."""
    from .handle import RunHandle

    return not isinstance(made, RunHandle)


def _commit_notes(request: CellRequest, commit: Commit) -> list[str]:
    chain = request.chain
    if not commit.added:
        return [
            f"not added to chain {chain}: it moved on while this ran — kept as turn #{commit.set_aside}; "
            f"`%interact restore {commit.set_aside}` makes the chain end here"
        ]
    if commit.rewind is None:
        return []
    # --new asked for the drop; re-running a cell replaces its own turn (that is the point): only the
    # turns after it are news (and history --all still lists every one)
    dropped = () if request.new else commit.rewind.dropped[1:]
    if not dropped:
        return []
    turns = f"{len(dropped)} later turn{'s' if len(dropped) > 1 else ''} dropped"
    return [
        f"chain {chain} rewound to turn {commit.rewind.position}; {turns} — `%interact history --all` lists them, "
        f"`%interact restore {dropped[-1].number}` puts them back"
    ]


def _structured(text: str, request: CellRequest, cut: str | None) -> Any:
    from ..answers import structured

    assert request.schema is not None
    data, problem = structured(text, request.schema, cut)
    if problem is not None:
        raise SchemaMismatch(f"the answer was {problem.message} (raw text: %interact last)"
                             if problem.kind == "cut" else f"{problem.message} (raw text: %interact last)")  # fmt: skip
    return data


def _turn(request: CellRequest, parts: list[Any], transcript: Transcript, answered_by: str) -> Turn:
    steps = [{"type": "user_input", "content": parts}] + transcript.steps
    final = transcript.interactions[-1]
    usage = final.usage.to_dict() if final.usage else {}
    ids = [i.id for i in transcript.interactions if i.id] if request.store else []
    return Turn(request.plan.cell_key, ids, answered_by, request.short_prompt, steps, usage)
