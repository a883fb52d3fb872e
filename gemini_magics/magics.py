"""``%%interact`` and ``%interact``: the magic class is glue: line → options → request → runner → result.

Only IPython and traitlets are imported here at load time (both already loaded in any kernel), so
``%load_ext gemini_magics`` stays fast; the request builder, client, pydantic and the local server load
on first use. The pipeline: ``request.py`` checks a cell into a :class:`CellRequest`, ``run/``
executes it, ``session.py`` holds the kernel's state and ``subcommands.py`` the line magic. Every
error of theirs is turned into a one-line ``UsageError`` here, in :meth:`InteractMagics._one_line`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand, output_can_be_silenced
from traitlets import observe

from .errors import InteractionEnded, MagicError, Stopped, client_error_line, connection_broke, interrupted
from .options import cell_options
from .render import actions
from .render.stops import CellStopped, install, uninstall
from .session import Session
from .settings import InteractSettings

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .request import CellRequest, Settings
    from .run.cell import Runner
    from .run.rows import RowsRequest
    from .subcommands import Context

__all__ = ["InteractMagics", "load", "unload"]


@magics_class
class InteractMagics(Magics, InteractSettings):
    """Talk to Gemini's Interactions API from cells. Configure with ``%config InteractMagics.<name> = ...``
    (the settings: :class:`~gemini_magics.settings.InteractSettings`)."""

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self.session = Session(
            shell.user_ns if shell is not None else None,
            engine=lambda: self.engine or None,
            cache_dir=lambda: self.cache_dir,
            policy=self.local_policy,
        )
        self._runner: Runner | None = None
        self._running_cells = 0
        if shell is not None:
            shell.events.register("pre_run_cell", self._remember_cell)
            shell.events.register("post_run_cell", self._cell_done)
            self.session.prestart()

    @observe("engine")
    def _engine_changed(self, change: Any) -> None:
        """A running embedded server keeps its engine: stop it, so the next cell starts the new one."""
        self.session.stop_local_backend()
        for notice in self.session.pop_notices():
            print(notice)

    chains = property(lambda self: self.session.chains, doc="This kernel's conversation chains.")
    usage_totals = property(lambda self: self.session.usage.by_model, doc="Token totals by model.")

    def _remember_cell(self, info: Any) -> None:
        self.session.cell_id = getattr(info, "cell_id", None)
        self._running_cells += 1

    def _cell_done(self, result: Any) -> None:
        self._running_cells = max(0, self._running_cells - 1)

    def await_interact_cells(self, lines: list[str]) -> list[str]:
        """The kernel's input transformer: a whole-cell %%interact is awaited, so Stop stays live.

        Only for a cell about to run: a magic that runs a cell itself (``%%time``, ``%%capture``)
        transforms it while another cell runs, and can neither compile nor run an ``await``; the cell
        magic then runs blocking, which works anywhere.
        """
        return lines if self._running_cells else _awaited(lines)

    def close(self) -> None:
        if self.shell is not None:
            for event, callback in (("pre_run_cell", self._remember_cell), ("post_run_cell", self._cell_done)):
                with contextlib.suppress(ValueError):
                    self.shell.events.unregister(event, callback)
        self.session.close()

    @cell_options
    @output_can_be_silenced
    @no_var_expand  # expanded once, by _request, here and in a kernel's awaited cells: --budget $5 is dollars
    @line_cell_magic
    def interact(self, line: str = "", cell: str | None = None) -> Any:
        """Send the cell to a Gemini model (cell magic), or manage state (line magic).

        The cell is the prompt. ``{{name}}`` puts a Python object from the kernel at that place:
        strings and numbers as text, dicts/lists as JSON, DataFrames as a table (whole when it fits
        the budget, else a sample, and the result says so), PIL images, image-shaped numpy arrays and
        matplotlib figures as images (other arrays as numbers), paths and bytes as image, audio, video
        or document parts. References are names with attributes and indexes (``{{df.columns}}``,
        ``{{rows[0]}}``, ``{{d["key"]}}``): no calls or other expressions; compute those in a cell
        first (``x = df.head()``) and write ``{{x}}``. A ``{{`` naming a variable that is not a valid
        reference is an error, never sent as text. ``\\{{`` is a literal ``{{``; other braces are left
        alone, so JSON and code are safe.

        Cells continue a conversation chain kept in this kernel (``--chain NAME``, default
        ``default``). Re-running a notebook cell replaces its own turn: the chain rewinds to it, the
        result says how many later turns were dropped, and ``%interact restore N`` brings them back.
        Without cell ids (terminal IPython) every cell is a new turn.

        Examples::

            %%interact
            Summarise this table in two sentences: {{df}}

            %%interact --chain travel -o plan
            Plan three days in {{city}}.

            %%interact --schema Person -o people --temperature 0
            Extract every person in this text: {{article}}

            %%interact --image -o pic --aspect-ratio 16:9 --image-size 2K
            A watercolour lighthouse at dawn

            %%interact --image -o pic2
            Make the sky in {{pic.images[0]}} stormy.      (editing: reference an image, in or across chains)

            %%interact --dry-run
            What would be sent for {{df}}?

            %%interact --over reviews --schema Review -o extracted --limit 5
            Extract the product and the rating from: {{row.text}}     (one row each; a DataFrame back)

        ``--over NAME`` runs the cell once per row of a DataFrame (or Series, or list of dicts/strings):
        ``{{row.col}}``, ``{{row["col name"]}}`` and ``{{row}}`` are the current row, other references are
        shared. Each row is a stateless interaction; rows run concurrently (``--concurrency``, lowered on
        429/503 and raised again as calls succeed); one bad row never stops the others. ``-o`` binds a
        DataFrame on the input's index: the schema's columns (or ``text``), ``_status``, ``_error``, ``_id``
        and token columns. Every answered row is cached on disk, so a re-run (after Stop, a crash, a
        restart) sends only the missing rows; ``--no-cache`` bypasses it. ``--limit K`` tries the first K
        rows, ``--dry-run`` shows the first row's request, tokens and cost per tier, ``--budget 50k`` or
        ``--budget $5`` stops cleanly at a cap. ``--over`` reads files too; ``--out PATH`` writes rows as
        they come. ``--batch`` hands the rows to the Batch API as jobs (written to disk a chunk at a time)
        and returns at once; ``-o`` is bound when they end, and a re-run after a restart follows the jobs
        still running (``%interact batch load NAME -o OUT`` in a new kernel).

        Line magic subcommands (each takes --help)::

            %interact config            effective settings and where each comes from
            %interact chains            chains and their lengths
            %interact history [--chain NAME] [--all]   --all: also turns a rewind dropped
            %interact restore N [--chain NAME]          make the chain end at turn #N again
            %interact reset [--chain NAME | --all]
            %interact get ID | delete ID | cancel ID
            %interact wait [ID]         wait for a --background, --agent or --batch cell (default: the latest)
            %interact mcp               connected MCP servers and their tools
            %interact cache [clear]     the --over row cache: size and location, or empty it
            %interact batch list | get NAME | cancel NAME | load NAME -o OUT   --batch jobs (load: after a restart)
            %interact files [delete NAME]  files uploaded from this kernel (each big file goes up once)
            %interact usage             token totals of this session, by model
            %interact models            known models and the active backend
            %interact last              the last result (also a failed one, with its raw text)
            %interact help

        A key in GEMINI_API_KEY (or GOOGLE_API_KEY) selects the Gemini API; GEMINI_BASE_URL any
        compatible server; with neither, an embedded local server (SmolLM2 or a scripted engine) is
        started on 127.0.0.1.
        """
        with self._one_line():
            if cell is None:
                from .subcommands import run_subcommand

                return run_subcommand(line, self._context())
            result = self.runner.run(request := self._request(line, cell))
            return None if request.silent else _shown(result)

    async def interact_async(self, line: str, cell: str) -> Any:
        """The cell magic as a coroutine, used in kernels so the event loop (and Stop) stays live."""
        with self._one_line():  # the line is expanded in _request, as on the blocking path
            request = self._request(line, cell)
            result = await self.runner.run_async(request)
        return None if request.silent else _shown(result)

    # -- glue -------------------------------------------------------------------------------------

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            from .run.cell import Runner

            self._runner = Runner(self.session, self._views())
        return self._runner

    def _views(self) -> Any:
        from ._threads import shared_loop
        from .render.live import Views

        return Views(self.shell, lambda: self.live, ticks=shared_loop, notices=self.session.pop_notices)

    def _request(self, line: str, cell: str) -> CellRequest | RowsRequest:
        from .request import build_request, expand_line, parse_line
        from .run.rows import build_rows_request, check_row_options

        args = parse_line(self.interact.parser, expand_line(line, self.session.namespace))
        check_row_options(args)
        self.session.check_server()  # a server that died since the last cell: its chains reset before planning
        if args.over is not None:
            return build_rows_request(
                args, cell, self.session.namespace, self._settings(), self.session.backend_identity()
            )
        return build_request(args, cell, self.session.namespace, self._settings(), self.session.planner())

    def _settings(self) -> Settings:
        from .request import Settings

        return Settings(model=self.model, image_model=self.image_model, audio_model=self.audio_model, video_model=self.video_model,
                        system=self.system, stream=self.stream,
                        table_budget=self.table_budget, table_rows=self.table_rows, headers=dict(self.headers),
                        tool_timeout=self.tool_timeout, timeout=self.timeout, preview_px=self.preview_px, save_dir=self.save_dir,
                        mcp_bridge=self.mcp_bridge, mcp_headers=dict(self.mcp_headers),
                        agent_config=dict(self.agent_config), concurrency=self.concurrency, prices=dict(self.prices),
                        max_frame_rows=self.max_frame_rows, batch_job_rows=self.batch_job_rows)  # fmt: skip

    def _context(self) -> Context:
        from .subcommands import Context

        configured = self.config.get("InteractMagics", {}) if self.config is not None else {}
        return Context(self.session, help_text=self.interact.__doc__ or "", settings=lambda: [
            (name, getattr(self, name), name in configured) for name in InteractSettings.class_own_traits(config=True)
        ], views=self._views())  # fmt: skip

    @contextlib.contextmanager
    def _one_line(self) -> Iterator[None]:
        """The one place where the pipeline's errors become one-line UsageErrors."""
        try:
            yield
        except Stopped as exc:  # the user's own doing: a grey badge, no red block (the cell still fails)
            raise CellStopped(str(exc), exc.kind) from None
        except MagicError as exc:
            raise UsageError(self._server_death(exc) or str(exc)) from None
        except Exception as exc:
            backend = self.session.started_backend
            message = client_error_line(exc, backend.base_url if backend is not None else "the server")
            if message is None:
                raise
            raise UsageError(self._server_death(exc) or message) from None
        except BaseException as exc:  # Ctrl-C, or the cancellation Kernel > Interrupt sends an awaited cell
            if not interrupted(exc):
                raise
            raise CellStopped("interrupted before an answer arrived: nothing was kept; the chain is unchanged",
                              "interrupted") from None

    def _server_death(self, exc: Exception) -> str | None:
        """The one line for a cell whose embedded server died under it, or None (a broken connection waits a moment)."""
        if self.session.started_backend is None:
            return None
        broken = connection_broke(exc) or isinstance(exc, InteractionEnded)
        return self.session.server_death(wait=1.0 if broken else 0.0)


def _shown(result: Any) -> Any:
    """What the cell returns: nothing for a background run whose own display stays up to date."""
    return None if getattr(result, "displayed", False) else result


_CELL_MAGIC_CALL = re.compile(r"^get_ipython\(\)\.run_cell_magic\('interact', (?P<args>.*)\)\n?$", re.DOTALL)


def _awaited(lines: list[str]) -> list[str]:
    """A whole-cell %%interact rewritten as an awaited coroutine: ipykernel then keeps dispatching widget
    messages (the Stop button) while the answer streams, which a blocking call would hold back."""
    match = _CELL_MAGIC_CALL.match("".join(lines))
    if match is None:
        return lines
    return [f"await get_ipython()._gemini_magics.interact_async({match.group('args')})\n"]


def load(ipython: InteractiveShell) -> None:
    unload(ipython)  # a second %load_ext replaces the first
    magics = InteractMagics(ipython)
    ipython.register_magics(magics)
    ipython._gemini_magics = magics  # type: ignore[attr-defined]
    install(ipython)
    if getattr(ipython, "kernel", None) is not None:
        ipython.input_transformers_post.append(magics.await_interact_cells)
        actions.serve(ipython)


def unload(ipython: InteractiveShell) -> None:
    magics = getattr(ipython, "_gemini_magics", None)
    if magics is not None:
        magics.close()
        uninstall(ipython)
        actions.stop()
        with contextlib.suppress(ValueError):
            ipython.input_transformers_post.remove(magics.await_interact_cells)

