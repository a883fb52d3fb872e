"""``%%interact`` and ``%interact``: parse options, glue the layers, turn errors into one line.

Only IPython and traitlets are imported here at load time (both already loaded in any kernel), so
``%load_ext gemini_magics`` stays fast; the client, pydantic and the local server load on first use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, output_can_be_silenced
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Dict, Int, Unicode

from ._constants import BASE_URL_ENV_VAR, DEFAULT_MODEL
from .chains import DEFAULT_CHAIN, ChainRegistry, Plan, Turn

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ._client import Client
    from ._streaming import InteractionStream
    from .backend import Backend
    from .render.live import LiveView
    from .render.result import InteractionResult
    from .types.interaction import Interaction

THINKING_LEVELS = ("minimal", "low", "medium", "high", "xhigh")
KNOWN_MODELS = (
    ("gemini-3-flash-preview", "fast general model (default)"),
    ("gemini-3.1-pro-preview", "strongest reasoning"),
    ("gemini-2.5-flash", "stable, fast"),
    ("gemini-2.5-pro", "stable, strong"),
    ("gemini-3-pro-image-preview", "image generation (--image default)"),
    ("deep-research-pro-preview-12-2025", "agent: use --agent, with --background"),
)


class _SubcommandParser(argparse.ArgumentParser):
    """argparse that reports mistakes as one-line UsageErrors instead of exiting the kernel."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message} (see %{self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        if message:
            print(message, file=sys.stderr)
        raise _HelpShown()


class _HelpShown(Exception):
    pass


def _identifier(value: str, option: str) -> str:
    if not value.isidentifier():
        raise UsageError(f"{option} needs a Python identifier, got {value!r}")
    return value


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
    engine = Unicode(
        "",
        help="Engine of the embedded local server: smollm2 or scripted (default: GEMINI_MAGICS_ENGINE, else smollm2 if installed).",
    ).tag(config=True)

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self.chains = ChainRegistry()
        self.usage_totals: dict[str, dict[str, int]] = {}
        self.last_result: InteractionResult | None = None
        self.background_runs: dict[str, threading.Thread] = {}
        self._backend: Backend | None = None
        self._backend_env: tuple[str | None, ...] | None = None
        self._cell_id: str | None = None
        if shell is not None:
            shell.events.register("pre_run_cell", self._remember_cell)

    def _remember_cell(self, info: Any) -> None:
        self._cell_id = getattr(info, "cell_id", None)

    def close(self) -> None:
        if self.shell is not None:
            with contextlib.suppress(ValueError):
                self.shell.events.unregister("pre_run_cell", self._remember_cell)
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    # -- the magic ------------------------------------------------------------------------------

    @magic_arguments()
    @argument("-m", "--model", help="model id (default: %%config InteractMagics.model)")
    @argument("--agent", help="an agent id instead of a model (e.g. deep-research-pro-preview-12-2025)")
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
    @argument("--temperature", type=float, help="sampling temperature, e.g. 0.2")
    @argument("--max-tokens", type=int, help="maximum output tokens")
    @argument(
        "--thinking",
        choices=THINKING_LEVELS,
        metavar="LEVEL",
        help="thinking level: " + ", ".join(THINKING_LEVELS),
    )
    @argument("--seed", type=int, help="sampling seed")
    @argument("--dry-run", action="store_true", help="show the request that would be sent, and send nothing")
    @output_can_be_silenced
    @line_cell_magic
    def interact(self, line: str = "", cell: str | None = None) -> Any:
        """Send the cell to a Gemini model (cell magic), or manage state (line magic).

        The cell is the prompt. ``{{name}}`` puts a Python object from the kernel at that place:
        strings and numbers as text, dicts/lists as JSON, DataFrames as a compact table, PIL images,
        numpy image arrays and matplotlib figures as images, paths and bytes as image, audio, video
        or document parts. ``{{df.head}}``-style attributes, ``{{rows[0]}}`` and ``{{d["key"]}}``
        work too; ``\\{{`` is a literal ``{{``. Other braces are left alone, so JSON and code are safe.

        Cells continue a conversation chain kept in this kernel (``--chain NAME``, default
        ``default``). Re-running a cell replaces its own turn instead of adding another.

        Examples::

            %%interact
            Summarise this table in two sentences: {{df}}

            %%interact --chain travel -o plan
            Plan three days in {{city}}.

            %%interact --schema Person -o people --temperature 0
            Extract every person in this text: {{article}}

            %%interact --image -o pic
            A watercolour lighthouse at dawn

            %%interact --dry-run
            What would be sent for {{df}}?

        Line magic subcommands (each takes --help)::

            %interact config            effective settings and where each comes from
            %interact chains            chains and their lengths
            %interact history [--chain NAME]
            %interact reset [--chain NAME | --all]
            %interact get ID | delete ID | cancel ID
            %interact wait [ID]         wait for a --background cell (default: the latest)
            %interact usage             token totals of this session, by model
            %interact models            known models and the active backend
            %interact last              the last result (also a failed one, with its raw text)
            %interact help

        A key in GEMINI_API_KEY (or GOOGLE_API_KEY) selects the Gemini API; GEMINI_BASE_URL any
        compatible server; with neither, an embedded local server (SmolLM2 or a scripted engine) is
        started on 127.0.0.1.
        """
        if cell is None:
            return self._subcommand(line)
        args = parse_argstring(self.interact, line)
        return self._run_cell(args, cell, line)

    # -- the cell ---------------------------------------------------------------------------------

    def _run_cell(self, args: argparse.Namespace, cell: str, line: str) -> Any:
        job = self._prepare(args, cell, line)
        if job.dry_run is not None:
            return job.dry_run
        with self._api_errors(job):
            if job.args.background:
                return self._start_background(job)
            interaction = self._send(job, interactive=False)
        return self._finish(job, interaction)

    async def interact_async(self, line: str, cell: str) -> Any:
        """The cell magic as a coroutine, used in kernels so the event loop (and Stop) stays live."""
        line = self.shell.var_expand(line, depth=1) if self.shell is not None else line
        args = parse_argstring(self.interact, line)
        job = self._prepare(args, cell, line)
        if job.dry_run is not None:
            return None if job.silent else job.dry_run
        with self._api_errors(job):
            if job.args.background:
                run = self._start_background(job)
                return None if job.silent else run
            interaction = await self._send_async(job)
        result = self._finish(job, interaction)
        return None if job.silent else result

    def _prepare(self, args: argparse.Namespace, cell: str, line: str) -> CellJob:
        """Check the options and the prompt, and plan the turn; nothing is sent and nothing changes."""
        import hashlib

        from .inputs import Options, TemplateError, render_parts

        out = _identifier(args.out, "-o/--out") if args.out else None
        if args.chain is not None and not args.chain.replace("-", "_").isidentifier():
            raise UsageError(f"--chain needs a simple name (letters, digits, _ or -), got {args.chain!r}")
        if args.agent and args.model:
            raise UsageError("use either -m/--model or --agent, not both")
        if args.agent and (
            args.temperature is not None
            or args.max_tokens is not None
            or args.seed is not None
            or args.thinking
        ):
            raise UsageError(
                "--temperature, --max-tokens, --seed and --thinking apply to models, not to --agent"
            )
        if args.background and args.no_store:
            raise UsageError("--background needs the interaction stored on the server: drop --no-store")
        if args.max_tokens is not None and args.max_tokens <= 0:
            raise UsageError(f"--max-tokens must be a positive number, got {args.max_tokens}")
        if args.temperature is not None and not 0.0 <= args.temperature <= 2.0:
            raise UsageError(f"--temperature must be between 0 and 2, got {args.temperature}")
        # a trailing ';' is IPython's "silence the output" marker, not part of the prompt
        cell = cell.strip()
        silent = cell.endswith(";")
        cell = cell[:-1].rstrip() if silent else cell
        if not cell:
            raise UsageError("the cell is empty: write the prompt below the %%interact line")
        namespace = self.shell.user_ns if self.shell is not None else {}
        schema_name, schema_obj, response_schema = self._schema(args.schema, namespace)
        try:
            parts = render_parts(
                cell, namespace, Options(table_budget=self.table_budget, max_rows=self.table_rows)
            )
        except TemplateError as exc:
            raise UsageError(str(exc)) from None
        model = args.agent or args.model or (self.image_model if args.image else self.model)
        params = self._request_params(args, model, response_schema)
        cell_key = self._cell_id or hashlib.sha256(f"{line}\n{cell}".encode()).hexdigest()[:16]
        plan = self.chains.plan(args.chain or DEFAULT_CHAIN, cell_key, new=args.new, stateless=args.no_store)
        job = CellJob(args, cell, args.chain or DEFAULT_CHAIN, out, model, params, parts, plan, cell_key,
                      schema_obj, schema_name, silent)  # fmt: skip
        if args.dry_run:
            job.dry_run = DryRun(self._request_body(params, parts, plan), plan)
        return job

    @contextlib.contextmanager
    def _api_errors(self, job: CellJob) -> Iterator[None]:
        """Resolve the backend and build the body; API failures become one-line UsageErrors."""
        from ._exceptions import GeminiError

        job.backend = self._get_backend()
        try:
            job.parts = self._upload_pending(job.backend.client, job.parts)
            job.body = self._request_body(job.params, job.parts, job.plan)
            yield
        except GeminiError as exc:
            raise UsageError(self._describe_error(exc, job.backend)) from None

    def _finish(self, job: CellJob, interaction: Interaction) -> InteractionResult:
        from .render.result import InteractionResult

        args = job.args
        result = InteractionResult(interaction, model=job.model, chain=job.chain, turn=job.plan.position + 1,
                                   schema_name=job.schema_name, stored=not args.no_store)  # fmt: skip
        self.last_result = result
        if interaction.status not in ("completed", "requires_action"):
            reason = "; ".join(e.message for e in interaction.errors or []) or "no reason given"
            raise UsageError(
                f"the interaction ended {interaction.status}: {reason} (chain {job.chain!r} unchanged)"
            )
        if job.schema_obj is not None:
            result.data = self._parse_structured(
                interaction.text, job.schema_obj, job.schema_name or "schema"
            )
        self._commit(job, interaction)
        if job.out and self.shell is not None:
            self.shell.user_ns[job.out] = result
        return result

    def _commit(self, job: CellJob, interaction: Interaction) -> None:
        plan = job.plan
        steps = [{"type": "user_input", "content": job.parts}] + [
            s.to_dict() for s in interaction.steps or [] if getattr(s, "type", None) != "user_input"
        ]
        usage = interaction.usage.to_dict() if interaction.usage else {}
        turn = Turn(job.cell_key, None if job.args.no_store else interaction.id, job.model,
                    " ".join(job.cell.split())[:80], steps, usage)  # fmt: skip
        self.chains.commit(plan, turn, new=job.args.new)
        totals = self.usage_totals.setdefault(
            job.model, {"interactions": 0, "input": 0, "output": 0, "thought": 0}
        )
        totals["interactions"] += 1
        totals["input"] += usage.get("total_input_tokens", 0)
        totals["output"] += usage.get("total_output_tokens", 0)
        totals["thought"] += usage.get("total_thought_tokens", 0)

    def _request_params(
        self, args: argparse.Namespace, model: str, response_schema: dict[str, Any] | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"agent": model} if args.agent else {"model": model}
        system = args.system if args.system is not None else self.system
        if system:
            params["system_instruction"] = system
        config: dict[str, Any] = {}
        if args.temperature is not None:
            config["temperature"] = args.temperature
        if args.max_tokens is not None:
            config["max_output_tokens"] = args.max_tokens
        if args.seed is not None:
            config["seed"] = args.seed
        if args.thinking:
            config["thinking_level"] = args.thinking
            config["thinking_summaries"] = "auto"
        if config:
            params["generation_config"] = config
        formats: list[dict[str, Any]] = []
        if response_schema is not None:
            formats.append({"type": "text", "mime_type": "application/json", "schema": response_schema})
        if args.image:
            formats.extend(
                [{"type": "image", "mime_type": "image/png"}] + ([] if formats else [{"type": "text"}])
            )
        if formats:
            params["response_format"] = formats if len(formats) > 1 else formats[0]
        if args.no_store:
            params["store"] = False
        if args.background:
            params["background"] = True
        return params

    @staticmethod
    def _request_body(params: dict[str, Any], parts: list[Any], plan: Plan) -> dict[str, Any]:
        body = dict(params)
        simple = len(parts) == 1 and isinstance(parts[0], dict) and parts[0].get("type") == "text"
        if plan.history:
            body["input"] = plan.history + [{"type": "user_input", "content": parts}]
        else:
            body["input"] = parts[0]["text"] if simple else parts
        if plan.previous_interaction_id:
            body["previous_interaction_id"] = plan.previous_interaction_id
        return body

    def _schema(
        self, name: str | None, namespace: dict[str, Any]
    ) -> tuple[str | None, Any, dict[str, Any] | None]:
        if not name:
            return None, None, None
        if name not in namespace:
            raise UsageError(
                f"--schema {name}: no such variable; define a pydantic model class or a JSON-schema dict named {name}"
            )
        obj = namespace[name]
        schema_method = getattr(obj, "model_json_schema", None)
        if isinstance(obj, type) and callable(schema_method):
            return name, obj, schema_method()
        if isinstance(obj, dict) and (
            "type" in obj or "properties" in obj or "$ref" in obj or "anyOf" in obj
        ):
            return name, obj, obj
        raise UsageError(
            f"--schema {name}: expected a pydantic model class or a JSON-schema dict, got {type(obj).__name__}"
        )

    def _parse_structured(self, text: str, schema: Any, name: str) -> Any:
        from .output import StructuredOutputError, parse_structured

        try:
            return parse_structured(text, schema)
        except StructuredOutputError as exc:
            raise UsageError(
                f"the answer does not match --schema {name}: {exc} (raw text: %interact last)"
            ) from None

    def _upload_pending(self, client: Client, parts: list[Any]) -> list[Any]:
        from .inputs import PendingUpload

        ready: list[Any] = []
        for part in parts:
            if isinstance(part, PendingUpload):
                uploaded = client.files.upload(part.path, mime_type=part.mime_type)
                ready.append(client.files.wait_active(uploaded.name).as_part())
            else:
                ready.append(part)
        return ready

    # -- sending: blocking, or awaiting in a kernel so the view's Stop button stays live --------------

    def _view(self, job: CellJob, *, stream: bool, interactive: bool) -> LiveView:
        from .render.live import make_live_view

        return make_live_view(self.shell, enabled=self.live, model=job.model, stream=stream, interactive=interactive,
                              structured=job.schema_obj is not None, chain=job.chain)  # fmt: skip

    def _streaming(self, job: CellJob) -> bool:
        return self.stream and not job.args.no_stream

    def _send(self, job: CellJob, *, interactive: bool) -> Interaction:
        client = job.client
        stream = self._streaming(job)
        view = self._view(job, stream=stream, interactive=interactive)
        if not stream:
            with view:
                interaction: Interaction = client.interactions.create(
                    extra_headers=self.headers or None, **job.body
                )
                view.finish(interaction)
            return interaction
        events = client.interactions.create(stream=True, extra_headers=self.headers or None, **job.body)
        with view, events:
            view.attach(cancel=events.abort)
            for event in events:
                view.event(event)
            interaction = events.interaction
            view.finish(interaction)
        return self._unless_stopped(job, view, interaction)

    async def _send_async(self, job: CellJob) -> Interaction:
        import asyncio

        if not self._streaming(job):
            return self._send(job, interactive=False)  # nothing to stop: no need to free the event loop
        client = job.client
        view = self._view(job, stream=True, interactive=True)
        events = await asyncio.to_thread(
            client.interactions.create, stream=True, extra_headers=self.headers or None, **job.body
        )
        with view, events:
            view.attach(cancel=events.abort)
            async for event in _pump(events):
                view.event(event)
            interaction = events.interaction
            view.finish(interaction)
        return self._unless_stopped(job, view, interaction)

    def _unless_stopped(self, job: CellJob, view: LiveView, interaction: Interaction) -> Interaction:
        if not view.stopped:
            return interaction
        from .render.result import InteractionResult

        self.last_result = InteractionResult(interaction, model=job.model, chain=job.chain)
        raise UsageError("stopped: the answer so far is in %interact last; the chain is unchanged")

    def _start_background(self, job: CellJob) -> BackgroundRun:
        from .render.live import make_background_view

        client = job.client
        started = client.interactions.create(extra_headers=self.headers or None, **job.body)
        run = BackgroundRun(started.id, job.model, job.out, job.chain)
        view = make_background_view(
            self.shell, enabled=self.live, run=run, cancel=lambda: client.interactions.cancel(started.id)
        )
        chain_length = len(self.chains.turns(job.chain))

        def wait() -> None:
            try:
                final = client.interactions.wait(
                    started.id, poll_interval=0.25, on_status=lambda i: view.status(i.status or "?")
                )
                run.status = final.status or "?"
                if final.status == "completed":
                    # commit only if the chain did not move on meanwhile: never drop others' turns
                    if len(self.chains.turns(job.chain)) == chain_length:
                        self._commit(job, final)
                    from .render.result import InteractionResult

                    run.result = InteractionResult(
                        final, model=job.model, chain=job.chain, turn=job.plan.position + 1
                    )
                    if job.out and self.shell is not None:
                        self.shell.user_ns[job.out] = run.result
                view.finish(run)
            except Exception as exc:  # a background thread must report, not die silently
                run.status = "failed"
                run.error = str(exc)
                view.finish(run)

        thread = threading.Thread(target=wait, daemon=True, name=f"interact-{started.id}")
        self.background_runs[started.id] = thread
        thread.start()
        return run

    # -- backend and errors -----------------------------------------------------------------------

    def _get_backend(self) -> Backend:
        from .backend import BackendUnavailable, environment_signature, resolve_backend

        signature = environment_signature()
        if self._backend is None or signature != self._backend_env:
            if self._backend is not None:
                self._backend.close()
                self._backend = None
            try:
                self._backend = resolve_backend(lambda message: print(message), engine=self.engine or None)
            except BackendUnavailable as exc:
                raise UsageError(str(exc)) from None
            self._backend_env = signature
        return self._backend

    @staticmethod
    def _describe_error(exc: Exception, backend: Backend, not_found: str | None = None) -> str:
        from ._exceptions import APIConnectionError, APIStatusError, StreamError

        if isinstance(exc, APIStatusError):
            message = exc.server_message or exc.message
            hints = {
                401: "check GEMINI_API_KEY",
                403: "check that the key may use this model",
                404: not_found
                or "the model or a previous interaction was not found: check -m, or start afresh with --new",
                429: "rate limited: wait and re-run the cell",
            }
            hint = hints.get(
                exc.status_code,
                "fix the request" if exc.status_code < 500 else "the server failed: re-run the cell later",
            )
            return f"the server answered {exc.status_code}: {message} ({hint})"
        if isinstance(exc, APIConnectionError):
            return f"cannot reach {backend.base_url}: {exc.message} (check the server, or GEMINI_BASE_URL)"
        if isinstance(exc, StreamError):
            return f"the stream reported an error: {exc.server_message} (re-run the cell)"
        return str(exc)

    # -- line magic subcommands -------------------------------------------------------------------

    def _subcommand(self, line: str) -> Any:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"interact: cannot parse the line: {exc}") from None
        if not words or words[0] in ("help", "-h", "--help"):
            print(self.interact.__doc__)
            return None
        parser = self._subcommand_parser()
        try:
            args = parser.parse_args(words)
        except _HelpShown:
            return None
        handler = getattr(self, f"_cmd_{args.command}")
        return handler(args)

    def _subcommand_parser(self) -> _SubcommandParser:
        parser = _SubcommandParser(prog="interact", add_help=False)
        sub = parser.add_subparsers(dest="command", parser_class=_SubcommandParser, metavar="SUBCOMMAND")
        sub.required = True
        sub.add_parser("config", help="effective settings and where each comes from", prog="interact config")
        sub.add_parser("chains", help="named chains and their turns", prog="interact chains")
        history = sub.add_parser("history", help="the turns of a chain", prog="interact history")
        history.add_argument("--chain", default=DEFAULT_CHAIN)
        reset = sub.add_parser(
            "reset", help="forget a chain (default: 'default') or all", prog="interact reset"
        )
        group = reset.add_mutually_exclusive_group()
        group.add_argument("--chain", default=None)
        group.add_argument("--all", action="store_true")
        for name, text in (("get", "fetch an interaction"), ("delete", "delete a stored interaction"),
                           ("cancel", "cancel a running background interaction")):  # fmt: skip
            p = sub.add_parser(name, help=text, prog=f"interact {name}")
            p.add_argument("id", help="interaction id")
        wait = sub.add_parser(
            "wait", help="wait for a background interaction (default: the latest)", prog="interact wait"
        )
        wait.add_argument(
            "id", nargs="?", default=None, help="interaction id (default: the latest --background cell)"
        )
        sub.add_parser("usage", help="token totals of this session by model", prog="interact usage")
        sub.add_parser("models", help="known models and the active backend", prog="interact models")
        sub.add_parser(
            "last", help="the last result, including a failed one's raw text", prog="interact last"
        )
        return parser

    def _cmd_config(self, args: argparse.Namespace) -> Any:
        from .backend import key_source
        from .render.result import TextTable

        configured = self.config.get("InteractMagics", {}) if self.config is not None else {}
        rows: list[list[Any]] = []
        for name in self.class_own_traits(config=True):
            source = "%config / ipython_config.py" if name in configured else "default"
            rows.append([name, repr(getattr(self, name)), source])
        key_from = key_source()
        rows.append(["api key", f"set, from {key_from}" if key_from else "not set", "environment"])
        rows.append(["base url", os.environ.get(BASE_URL_ENV_VAR) or "(none)", BASE_URL_ENV_VAR])
        backend = (
            self._backend.description
            if self._backend is not None
            else "not started yet (chosen at the first %%interact)"
        )
        rows.append(["backend", backend, "key / GEMINI_BASE_URL / embedded"])
        return TextTable(["setting", "value", "from"], rows, title="gemini-magics configuration")

    def _cmd_chains(self, args: argparse.Namespace) -> Any:
        from .render.result import TextTable

        rows = []
        for name in self.chains.names():
            turns = self.chains.turns(name)
            stored = "server" if turns and turns[-1].interaction_id else "kernel"
            rows.append([name, len(turns), turns[-1].interaction_id or "-" if turns else "-", stored])
        return TextTable(["chain", "turns", "last interaction", "history kept on"], rows, title="chains",
                         empty="(no chains yet: run a %%interact cell)")  # fmt: skip

    def _cmd_history(self, args: argparse.Namespace) -> Any:
        from .render.result import TextTable

        if self.chains.get(args.chain) is None:
            raise self._unknown_chain("history", args.chain)
        rows = []
        for i, turn in enumerate(self.chains.turns(args.chain), 1):
            tokens = f"{turn.usage.get('total_input_tokens', 0)} in / {turn.usage.get('total_output_tokens', 0)} out"
            rows.append([i, turn.interaction_id or "(not stored)", turn.model, turn.prompt, tokens])
        return TextTable(["turn", "id", "model", "prompt", "tokens"], rows, title=f"chain {args.chain!r}")

    def _cmd_reset(self, args: argparse.Namespace) -> None:
        if args.all:
            gone = self.chains.reset(None)
            print(f"forgot {len(gone)} chain(s)" + (f": {', '.join(gone)}" if gone else ""))
            return
        name = args.chain or DEFAULT_CHAIN
        if not self.chains.reset(name):
            raise self._unknown_chain("reset", name)
        print(f"chain {name!r} reset: the next cell starts a new conversation")

    def _unknown_chain(self, action: str, name: str) -> UsageError:
        known = ", ".join(self.chains.names()) or "none"
        return UsageError(f"interact {action}: no chain named {name!r} (known: {known})")

    def _with_client(self, action: str, interaction_id: str, call: Any) -> Any:
        from ._exceptions import GeminiError

        backend = self._get_backend()
        try:
            return call(backend.client)
        except GeminiError as exc:
            hint = "check the id: %interact history lists this session's"
            raise UsageError(
                f"interact {action} {interaction_id}: {self._describe_error(exc, backend, hint)}"
            ) from None

    def _cmd_get(self, args: argparse.Namespace) -> Any:
        interaction = self._with_client("get", args.id, lambda c: c.interactions.get(args.id))
        return _fetched(interaction)

    def _cmd_delete(self, args: argparse.Namespace) -> None:
        self._with_client("delete", args.id, lambda c: c.interactions.delete(args.id))
        print(f"deleted {args.id}")

    def _cmd_cancel(self, args: argparse.Namespace) -> None:
        interaction = self._with_client("cancel", args.id, lambda c: c.interactions.cancel(args.id))
        print(f"{args.id}: {interaction.status}")

    def _cmd_wait(self, args: argparse.Namespace) -> Any:
        if args.id is None:
            if not self.background_runs:
                raise UsageError(
                    "interact wait: no --background cell has run yet (or give an interaction id)"
                )
            args.id = next(reversed(self.background_runs))
            # the cell's own watcher binds --out and advances the chain: let it finish first
            self.background_runs[args.id].join()
        interaction = self._with_client(
            "wait", args.id, lambda c: c.interactions.wait(args.id, poll_interval=0.25)
        )
        return _fetched(interaction)

    def _cmd_usage(self, args: argparse.Namespace) -> Any:
        from .render.result import TextTable

        rows = [[m, t["interactions"], t["input"], t["output"], t["thought"], t["input"] + t["output"] + t["thought"]]
                for m, t in sorted(self.usage_totals.items())]  # fmt: skip
        return TextTable(["model", "interactions", "input", "output", "thought", "total"], rows,
                         title="token usage this session", empty="(no interactions yet)")  # fmt: skip

    def _cmd_models(self, args: argparse.Namespace) -> Any:
        from .backend import key_source
        from .render.result import TextTable

        has_key = "✅" if key_source() else "❌ (no key)"
        rows = [[m, note, has_key] for m, note in KNOWN_MODELS]
        if self._backend is not None and self._backend.kind != "gemini":
            rows.insert(0, ["(any name)", f"answered by {self._backend.description}", "✅"])
        return TextTable(["model", "notes", "usable"], rows, title="models")

    def _cmd_last(self, args: argparse.Namespace) -> Any:
        if self.last_result is None:
            raise UsageError("interact last: no %%interact cell has run yet")
        return self.last_result


@dataclass
class CellJob:
    """Everything one %%interact cell needs, from checked options to the request body."""

    args: argparse.Namespace
    cell: str
    chain: str
    out: str | None
    model: str
    params: dict[str, Any]
    parts: list[Any]
    plan: Plan
    cell_key: str
    schema_obj: Any
    schema_name: str | None
    silent: bool
    dry_run: DryRun | None = None
    backend: Backend | None = None
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def client(self) -> Client:
        assert self.backend is not None
        return self.backend.client


def _fetched(interaction: Interaction) -> InteractionResult:
    """A result for an interaction fetched by id (no cell, so no chain)."""
    from .render.result import InteractionResult

    return InteractionResult(interaction, model=interaction.model or interaction.agent or "?")


_END = object()


async def _pump(events: InteractionStream) -> AsyncIterator[Any]:
    """The stream's events, read in a worker thread so the kernel's event loop keeps running."""
    import asyncio

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def read() -> None:
        try:
            for event in events:
                loop.call_soon_threadsafe(queue.put_nowait, event)
        except BaseException as exc:  # handed to the loop thread, which raises it
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _END)

    reader = threading.Thread(target=read, daemon=True, name="gemini-magics-stream")
    reader.start()
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        events.abort()
        await asyncio.to_thread(reader.join, 5)


_CELL_MAGIC_CALL = re.compile(r"^get_ipython\(\)\.run_cell_magic\('interact', (?P<args>.*)\)\n?$", re.DOTALL)


def await_interact_cells(lines: list[str]) -> list[str]:
    """In a kernel, run a whole-cell %%interact as a coroutine: ipykernel then keeps dispatching widget
    messages (the Stop button) while the answer streams, which a blocking call would hold back."""
    match = _CELL_MAGIC_CALL.match("".join(lines))
    if match is None:
        return lines
    return [f"await get_ipython()._gemini_magics.interact_async({match.group('args')})\n"]


class DryRun:
    """What ``--dry-run`` shows: the request body with base64 data summarised, and the chain plan."""

    def __init__(self, body: dict[str, Any], plan: Plan) -> None:
        self.request = body
        self.plan = plan

    def summary(self) -> dict[str, Any]:
        from .inputs import summarise_part

        def walk(value: Any) -> Any:
            if isinstance(value, dict):
                return summarise_part({k: walk(v) for k, v in value.items()})
            if isinstance(value, list):
                return [walk(v) for v in value]
            return value

        summary: dict[str, Any] = walk(self.request)
        return summary

    def __repr__(self) -> str:
        return "POST /interactions (dry run, nothing sent)\n" + json.dumps(
            self.summary(), indent=2, ensure_ascii=False
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/plain": repr(self), "application/json": self.summary()}


class BackgroundRun:
    """The handle a ``--background`` cell returns at once; ``.result`` is filled in when it finishes."""

    def __init__(self, interaction_id: str, model: str, out: str | None, chain: str) -> None:
        self.id = interaction_id
        self.model = model
        self.out = out
        self.chain = chain
        self.status = "in_progress"
        self.started = time.monotonic()
        self.result: InteractionResult | None = None
        self.error: str | None = None

    def __repr__(self) -> str:
        where = f"; the result will be bound to {self.out!r}" if self.out else ""
        return f"background interaction {self.id} ({self.model}): {self.status}{where}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        where = f"; the result will be bound to `{self.out}`" if self.out else ""
        markdown = f"Background interaction `{self.id}` ({self.model}): **{self.status}**{where} — `%interact wait` waits for it."
        return {"text/plain": repr(self), "text/markdown": markdown}


def load(ipython: InteractiveShell) -> None:
    magics = InteractMagics(ipython)
    ipython.register_magics(magics)
    ipython._gemini_magics = magics  # type: ignore[attr-defined]
    if (
        getattr(ipython, "kernel", None) is not None
        and await_interact_cells not in ipython.input_transformers_post
    ):
        ipython.input_transformers_post.append(await_interact_cells)


def unload(ipython: InteractiveShell) -> None:
    magics = getattr(ipython, "_gemini_magics", None)
    if magics is not None:
        magics.close()
    if await_interact_cells in ipython.input_transformers_post:
        ipython.input_transformers_post.remove(await_interact_cells)
