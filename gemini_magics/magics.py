"""``%%interact`` and ``%interact``: the magic class is glue: line → options → request → runner → result.

Only IPython and traitlets are imported here at load time (both already loaded in any kernel), so
``%load_ext gemini_magics`` stays fast; the request builder, client, pydantic and the local server load
on first use. The pipeline: ``request.py`` checks a cell into a :class:`CellRequest`, ``runner.py``
executes it, ``session.py`` holds the kernel's state and ``subcommands.py`` the line magic. Every
error of theirs is turned into a one-line ``UsageError`` here, in :meth:`InteractMagics._one_line`.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, output_can_be_silenced
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Dict, Enum, Float, Int, List, Unicode, observe

from ._constants import ASPECT_RATIOS, DEFAULT_MODEL, IMAGE_SIZES, THINKING_LEVELS
from .errors import MagicError, client_error_line
from .session import Session

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .request import CellRequest, Settings
    from .rows import RowsRequest
    from .runner import Runner
    from .subcommands import Context

__all__ = ["InteractMagics", "load", "unload"]


@magics_class
class InteractMagics(Magics):
    """Talk to Gemini's Interactions API from cells. Configure with ``%config InteractMagics.<name> = ...``."""

    model = Unicode(DEFAULT_MODEL, help="Model used when -m/--model is not given.").tag(config=True)
    image_model = Unicode(
        "gemini-3-pro-image-preview", help="Model used for --image when -m is not given."
    ).tag(config=True)
    system = Unicode("", help="Default system instruction (-s/--system overrides it).").tag(config=True)
    stream = Bool(True, help="Stream answers (--no-stream turns it off for one cell).").tag(config=True)
    live = Bool(True, help="Show the live streaming view while an answer arrives.").tag(config=True)
    table_budget = Int(4000, help="Characters a DataFrame summary may take in a prompt.").tag(config=True)
    table_rows = Int(20, help="Rows of a DataFrame's head/tail sample at most.").tag(config=True)
    headers = Dict(
        value_trait=Unicode(), help="Extra HTTP headers sent with every request (proxies, tracing)."
    ).tag(config=True)
    timeout = Float(
        60.0, help="Seconds without an answer (or between two streamed events) before a cell gives up."
    ).tag(config=True)
    agent_config = Dict(help="Default agent settings (--agent-config JSON overrides them).").tag(config=True)
    mcp_bridge = Enum(
        ("auto", "always", "never"), "auto",
        help="--mcp servers the kernel connects to itself: auto (stdio and local ones), always, or never.",
    ).tag(config=True)  # fmt: skip
    mcp_headers = Dict(
        value_trait=Unicode(), help="Headers for MCP servers the API connects to (server-side --mcp)."
    ).tag(config=True)
    preview_px = Int(
        1024, help="Generated images larger than this (pixels, long side) are saved in notebooks as previews."
    ).tag(config=True)
    tool_timeout = Float(30.0, help="Seconds one --tools function call may take before it is an error.").tag(
        config=True
    )
    cache_dir = Unicode(
        "",
        help="Directory of the row cache and the journal of long runs (default: the platform's user cache dir).",
    ).tag(config=True)
    concurrency = Int(8, help="Rows of an --over cell sent at once (--concurrency overrides it).").tag(
        config=True
    )
    local_code_execution = Bool(
        False, help="Let the embedded local server run code_execution calls on this machine (isolated, with limits)."
    ).tag(config=True)
    local_fetch_hosts = List(
        Unicode(), help="Hosts the embedded server's url_context and agents may fetch: names, *.suffix, * (public "
        "hosts), addresses or networks; loopback and private hosts only when named.",
    ).tag(config=True)
    engine = Unicode(
        "",
        help="Engine of the embedded local server: smollm2 or scripted (default: GEMINI_MAGICS_ENGINE, else smollm2 if installed).",
    ).tag(config=True)

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self.session = Session(
            shell.user_ns if shell is not None else None,
            engine=lambda: self.engine or None,
            cache_dir=lambda: self.cache_dir,
            policy=self._local_policy,
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

    def _local_policy(self) -> Any:
        from .local.policy import Policy

        return Policy(self.local_code_execution, frozenset(h.strip().lower() for h in self.local_fetch_hosts))

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
            for event, callback in (
                ("pre_run_cell", self._remember_cell),
                ("post_run_cell", self._cell_done),
            ):
                with contextlib.suppress(ValueError):
                    self.shell.events.unregister(event, callback)
        self.session.close()

    @magic_arguments()
    @argument("-m", "--model", help="model id (default: %%config InteractMagics.model)")
    @argument(
        "--agent",
        help="an agent id instead of a model (e.g. deep-research-pro-preview-12-2025); agents run in the background",
    )
    @argument(
        "--agent-config", metavar="JSON", help='agent settings, e.g. \'{"thinking_summaries": "auto"}\''
    )
    @argument("-s", "--system", help="system instruction for this cell")
    @argument("--chain", default=None, help="name of the conversation chain to continue (default: 'default')")
    @argument("--new", action="store_true", help="start the chain afresh instead of continuing it")
    @argument(
        "--no-store", action="store_true", help="do not store on the server: history is sent from the kernel"
    )
    @argument("--no-stream", action="store_true", help="wait for the whole answer instead of streaming it")
    @argument(
        "--background",
        action="store_true",
        help="run in the background; the result is bound to --out when done",
    )
    @argument("-o", "--out", help="bind the result object to this variable")
    @argument(
        "--schema", help="name of a pydantic model class or JSON-schema dict: structured output into .data"
    )
    @argument("--image", action="store_true", help="ask for image output (bound as PIL images in .images)")
    @argument(
        "--aspect-ratio",
        choices=ASPECT_RATIOS,
        metavar="W:H",
        help="with --image: " + ", ".join(ASPECT_RATIOS),
    )
    @argument(
        "--image-size", choices=IMAGE_SIZES, metavar="SIZE", help="with --image: " + ", ".join(IMAGE_SIZES)
    )
    @argument("--temperature", type=float, help="sampling temperature, e.g. 0.2")
    @argument("--max-tokens", type=int, help="maximum output tokens")
    @argument(
        "--thinking",
        choices=THINKING_LEVELS,
        metavar="LEVEL",
        help="thinking level: " + ", ".join(THINKING_LEVELS),
    )
    @argument("--seed", type=int, help="sampling seed")
    @argument(
        "--tools",
        metavar="NAME[,NAME...]",
        help="kernel functions the model may call (run for it), and/or google_search, code_execution, url_context",
    )
    @argument("--max-steps", type=int, default=10, help="rounds of tool calls at most (default 10)")
    @argument(
        "--mcp",
        action="append",
        metavar="URL_OR_stdio:COMMAND",
        help="an MCP server whose tools the model may call (repeatable); local and stdio ones are bridged by the kernel",
    )
    @argument("--mcp-tools", metavar="NAME[,NAME...]", help="only these tools of the --mcp servers")
    @argument(
        "--over", metavar="NAME",
        help="run the cell once per row of a DataFrame/Series/list ({{row.col}}); binds a DataFrame to -o",
    )  # fmt: skip
    @argument("--limit", type=int, metavar="K", help="with --over: the first K rows only")
    @argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="with --over: rows at once (default: %%config InteractMagics.concurrency)",
    )
    @argument(
        "--no-cache",
        action="store_true",
        help="with --over: send every row, ignoring (and not filling) the row cache",
    )
    @argument(
        "--budget",
        type=int,
        metavar="TOKENS",
        help="with --over: stop cleanly once the run has used this many tokens",
    )
    @argument("--store", action="store_true", help="with --over: store each row's interaction on the server")
    @argument(
        "--batch",
        action="store_true",
        help="with --over: one Gemini Batch API job (half price, hours); returns at once",
    )
    @argument("--service-tier", choices=("standard", "flex", "priority"), metavar="TIER",
              help="standard, flex (half price, slower, may be shed) or priority")  # fmt: skip
    @argument("--dry-run", action="store_true", help="show the request that would be sent, and send nothing")
    @output_can_be_silenced
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
        rows, ``--dry-run`` shows the first row's request and a token estimate, ``--budget TOKENS`` stops
        cleanly at a cap, ``--service-tier flex`` asks for the cheaper, slower tier. ``--batch`` sends the
        rows as one Gemini Batch API job instead and returns at once: the cell's display follows the job,
        and ``-o`` is bound when it ends; jobs are journaled, so ``%interact batch load NAME -o OUT`` gets
        a job's DataFrame in a new kernel.

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
            return _shown(self.runner.run(self._request(line, cell)))

    async def interact_async(self, line: str, cell: str) -> Any:
        """The cell magic as a coroutine, used in kernels so the event loop (and Stop) stays live."""
        line = self.shell.var_expand(line, depth=1) if self.shell is not None else line
        with self._one_line():
            request = self._request(line, cell)
            result = await self.runner.run_async(request)
        return None if request.silent else _shown(result)

    # -- glue -------------------------------------------------------------------------------------

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            from .render.live import Views
            from .runner import Runner

            self._runner = Runner(self.session, Views(self.shell, lambda: self.live))
        return self._runner

    def _request(self, line: str, cell: str) -> CellRequest | RowsRequest:
        from .request import build_request, split_line
        from .rows import build_rows_request, check_row_options

        args = self.interact.parser.parse_args(split_line(line))
        check_row_options(args)
        self.session.check_server()  # a server that died since the last cell: its chains reset before planning
        if args.over is not None:
            return build_rows_request(
                args, cell, self.session.namespace, self._settings(), self.session.backend_identity()
            )
        return build_request(args, cell, self.session.namespace, self._settings(), self.session.planner())

    def _settings(self) -> Settings:
        from .request import Settings

        return Settings(model=self.model, image_model=self.image_model, system=self.system, stream=self.stream,
                        table_budget=self.table_budget, table_rows=self.table_rows, headers=dict(self.headers),
                        tool_timeout=self.tool_timeout, timeout=self.timeout, preview_px=self.preview_px,
                        mcp_bridge=self.mcp_bridge, mcp_headers=dict(self.mcp_headers),
                        agent_config=dict(self.agent_config), concurrency=self.concurrency)  # fmt: skip

    def _context(self) -> Context:
        from .render.live import Views
        from .subcommands import Context

        configured = self.config.get("InteractMagics", {}) if self.config is not None else {}
        return Context(self.session, help_text=self.interact.__doc__ or "", settings=lambda: [
            (name, getattr(self, name), name in configured) for name in self.class_own_traits(config=True)
        ], views=Views(self.shell, lambda: self.live))  # fmt: skip

    @contextlib.contextmanager
    def _one_line(self) -> Iterator[None]:
        """The one place where the pipeline's errors become one-line UsageErrors."""
        try:
            yield
        except MagicError as exc:
            raise UsageError(self._server_death(exc) or str(exc)) from None
        except Exception as exc:
            backend = self.session.started_backend
            message = client_error_line(exc, backend.base_url if backend is not None else "the server")
            if message is None:
                raise
            raise UsageError(self._server_death(exc) or message) from None
        except BaseException as exc:  # Ctrl-C, or the cancellation Kernel > Interrupt sends an awaited cell
            if not _interrupted(exc):
                raise
            raise UsageError(
                "interrupted before an answer arrived: nothing was kept; the chain is unchanged"
            ) from None

    def _server_death(self, exc: Exception) -> str | None:
        """The one line for a cell whose embedded server died under it, or None. A broken connection
        gives a dying server a moment to be reaped; other errors only look."""
        if self.session.started_backend is None:
            return None
        broken = type(exc).__name__ in ("APIConnectionError", "APITimeoutError", "StreamError", "InteractionEnded")
        return self.session.server_death(wait=1.0 if broken else 0.0)


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C, or Kernel > Interrupt (which cancels an awaited cell); asyncio is not imported for this."""
    asyncio = sys.modules.get("asyncio")
    return isinstance(exc, KeyboardInterrupt) or (
        asyncio is not None and isinstance(exc, asyncio.CancelledError)
    )


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
    if getattr(ipython, "kernel", None) is not None:
        ipython.input_transformers_post.append(magics.await_interact_cells)


def unload(ipython: InteractiveShell) -> None:
    magics = getattr(ipython, "_gemini_magics", None)
    if magics is not None:
        magics.close()
        with contextlib.suppress(ValueError):
            ipython.input_transformers_post.remove(magics.await_interact_cells)
