"""``%interact SUBCOMMAND``: each subcommand a small function with its own parser.

A subcommand sees the :class:`~gemini_magics.session.Session` and a read-only view of the magic's
settings (:class:`Context`), never the magic itself. Mistakes raise
:class:`~gemini_magics.errors.OptionError`; the magic words every error in one line.
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._constants import BASE_URL_ENV_VAR
from .chains import DEFAULT_CHAIN
from .errors import MagicError, OptionError, Stopped

if TYPE_CHECKING:
    from ._client import Client
    from .chains import Turn
    from .render.live import Views
    from .render.result import InteractionResult, TextTable
    from .run.handle import BackgroundRun
    from .session import Session
    from .types.interaction import Interaction

__all__ = ["Context", "run_subcommand"]

QUIET_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class Context:
    session: Session
    settings: Callable[[], list[tuple[str, Any, bool]]]
    """``(name, value, set by the user)`` of every configurable setting, for ``%interact config``."""
    help_text: str
    views: Views | None = None
    """How this shell shows progress (a widget in a kernel, lines in a terminal)."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes as one-line errors instead of exiting the kernel."""

    def error(self, message: str) -> Any:
        raise OptionError(f"{self.prog}: {message} (see %{self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        if message:
            print(message, file=sys.stderr)
        raise _HelpShown()


class _HelpShown(Exception):
    pass


def run_subcommand(line: str, context: Context) -> Any:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise OptionError(f"interact: cannot parse the line: {exc}") from None
    if not words or words[0] in ("help", "-h", "--help"):
        print(context.help_text)
        return None
    try:
        args = _parser().parse_args(words)
    except _HelpShown:
        return None
    handler: Callable[[argparse.Namespace, Context], Any] = args.handler
    return handler(args, context)


def _parser() -> _Parser:
    parser = _Parser(prog="interact", add_help=False)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="SUBCOMMAND")
    sub.required = True

    def add(name: str, handler: Callable[[argparse.Namespace, Context], Any], text: str) -> _Parser:
        command: _Parser = sub.add_parser(name, help=text, prog=f"interact {name}")
        command.set_defaults(handler=handler)
        return command

    add("config", config, "effective settings and where each comes from")
    add("chains", chains, "named chains and their turns")
    shown = add("history", history, "the turns of a chain")
    shown.add_argument("--chain", default=DEFAULT_CHAIN)
    shown.add_argument(
        "--all", action="store_true", help="also the turns a rewind dropped, with their numbers"
    )
    back = add("restore", restore, "make a chain end at an earlier turn again (numbers: history --all)")
    back.add_argument("turn", type=int, help="the turn's number in %%interact history --all")
    back.add_argument("--chain", default=DEFAULT_CHAIN)
    group = add("reset", reset, "forget a chain (default: 'default') or all").add_mutually_exclusive_group()
    group.add_argument("--chain", default=None)
    group.add_argument("--all", action="store_true")
    add("get", get, "fetch an interaction").add_argument("id", help="interaction id")
    add("delete", delete, "delete a stored interaction").add_argument("id", help="interaction id")
    add("cancel", cancel, "cancel a running background interaction").add_argument("id", help="interaction id")
    add("wait", wait, "wait for a background interaction (default: the latest)").add_argument(
        "id", nargs="?", default=None, help="interaction id (default: the latest --background cell)"
    )
    add("mcp", mcp, "MCP servers this kernel is connected to, and their tools")
    jobs = add("batch", batch, "--batch jobs: list | get NAME | cancel NAME | load NAME -o OUT | forget NAME")
    jobs.add_argument("action", choices=["list", "get", "cancel", "load", "forget"])
    jobs.add_argument("name", nargs="?", help="the job's name (batches/...)")
    jobs.add_argument("-o", "--out", help="load: bind the DataFrame to this variable")
    jobs.add_argument(
        "--schema", help="load: check the answers with this pydantic class (default: the JSON schema sent)"
    )
    add("cache", cache, "the --over row cache: size and location (clear: empty it)").add_argument(
        "action", nargs="?", choices=["clear"], help="clear: delete every cached row"
    )
    files_parser = add("files", files, "files this kernel uploaded (big references go through the Files API)")
    files_parser.add_argument("action", nargs="?", choices=["delete"], help="delete NAME")
    files_parser.add_argument("name", nargs="?", help="the file's name (files/...), for delete")
    store_parser = add("store", store, "file search stores: create NAME PATH... | get NAME | delete NAME")
    store_parser.add_argument("action", choices=["create", "get", "delete"])
    store_parser.add_argument("name", help="create: a display name; get, delete: the store (fileSearchStores/...)")
    store_parser.add_argument("paths", nargs="*", help="create: text files to upload and index")
    add("usage", usage, "token totals of this session by model")
    add("models", models, "known models and the active backend")
    add("last", last, "the last result, including a failed one's raw text")
    return parser


def _table(headers: list[str], rows: list[list[Any]], title: str, empty: str = "(none)") -> TextTable:
    from .render.result import TextTable

    return TextTable(headers, rows, title=title, empty=empty)


def config(args: argparse.Namespace, context: Context) -> TextTable:
    from .backend import key_source

    backend = context.session.started_backend
    engine = backend.engine if backend is not None else None
    rows: list[list[Any]] = []
    for name, value, configured in context.settings():
        shown = repr(value)
        if name == "engine" and backend is not None and backend.kind != "local":
            shown += f" (unused: the backend is {backend.description})"
        rows.append([name, shown, "%config / ipython_config.py" if configured else "default"])
    if engine is not None:
        rows.append(["max output tokens", f"{engine.default_max_tokens} unless --max-tokens says otherwise",
                     f"the embedded {engine.name} engine"])  # fmt: skip
    key_from = key_source()
    rows.append(["api key", f"set, from {key_from}" if key_from else "not set", "environment"])
    rows.append(["base url", os.environ.get(BASE_URL_ENV_VAR) or "(none)", BASE_URL_ENV_VAR])
    running = (
        backend.description if backend is not None else "not started yet (chosen at the first %%interact)"
    )
    rows.append(["backend", running, "key / GEMINI_BASE_URL / embedded"])
    return _table(["setting", "value", "from"], rows, "gemini-magics configuration")


def chains(args: argparse.Namespace, context: Context) -> TextTable:
    registry = context.session.chains
    rows = []
    for name in registry.names():
        turns = registry.turns(name)
        stored = "server" if turns and turns[-1].interaction_id else "kernel"
        rows.append([name, len(turns), turns[-1].interaction_id or "-" if turns else "-", stored])
    return _table(["chain", "turns", "last interaction", "history kept on"], rows, "chains",
                  empty="(no chains yet: run a %%interact cell)")  # fmt: skip


def _unknown_chain(action: str, name: str, context: Context) -> OptionError:
    known = ", ".join(context.session.chains.names()) or "none"
    return OptionError(f"interact {action}: no chain named {name!r} (known: {known})")


def history(args: argparse.Namespace, context: Context) -> TextTable:
    registry = context.session.chains
    if registry.get(args.chain) is None:
        raise _unknown_chain("history", args.chain, context)
    turns = registry.turns(args.chain)

    def tokens(turn: Turn) -> str:
        return (
            f"{turn.usage.get('total_input_tokens', 0)} in / {turn.usage.get('total_output_tokens', 0)} out"
        )

    if not args.all:
        rows = [[i, turn.interaction_id or "(not stored)", turn.model, turn.prompt, tokens(turn)]
                for i, turn in enumerate(turns, 1)]  # fmt: skip
        return _table(["turn", "id", "model", "prompt", "tokens"], rows, f"chain {args.chain!r}")
    rows = []
    for turn in registry.archive(args.chain):
        position = next((i for i, t in enumerate(turns, 1) if t is turn), None)
        where = f"turn {position}" if position else "dropped"
        rows.append(
            [
                f"#{turn.number}",
                where,
                turn.interaction_id or "(not stored)",
                turn.model,
                turn.prompt,
                tokens(turn),
            ]
        )
    return _table(["number", "in chain", "id", "model", "prompt", "tokens"], rows,
                  f"chain {args.chain!r}, every turn (`%interact restore NUMBER` makes the chain end there)")  # fmt: skip


def restore(args: argparse.Namespace, context: Context) -> None:
    registry = context.session.chains
    if registry.get(args.chain) is None:
        raise _unknown_chain("restore", args.chain, context)
    numbers = [t.number for t in registry.archive(args.chain)]
    if args.turn not in numbers:
        raise OptionError(
            f"interact restore: chain {args.chain!r} has no turn #{args.turn} (it has #{numbers[0]}–#{numbers[-1]}: see %interact history --all)"
        )
    path, left = context.session.restore(args.chain, args.turn)
    gone = f"; {len(left)} turn(s) left it (still listed by history --all)" if left else ""
    print(f"chain {args.chain!r} now ends at turn #{args.turn} ({len(path)} turns){gone}")


def reset(args: argparse.Namespace, context: Context) -> None:
    session = context.session
    if args.all:
        gone = session.reset(None)
        print(f"forgot {len(gone)} chain(s)" + (f": {', '.join(gone)}" if gone else ""))
        return
    name = args.chain or DEFAULT_CHAIN
    if not session.reset(name):
        raise _unknown_chain("reset", name, context)
    print(f"chain {name!r} reset: the next cell starts a new conversation")


def _call(action: str, interaction_id: str, context: Context, call: Callable[[Client], Any]) -> Any:
    from ._exceptions import GeminiError
    from .errors import describe_api_error

    backend = context.session.backend()
    try:
        return call(backend.client)
    except GeminiError as exc:
        hint = "check the id: %interact history lists this session's"
        raise MagicError(
            f"interact {action} {interaction_id}: {describe_api_error(exc, backend.base_url, hint)}"
        ) from None


def _fetched(interaction: Interaction) -> InteractionResult:
    """A result for an interaction fetched by id (no cell, so no chain)."""
    from .render.result import InteractionResult

    return InteractionResult(interaction, model=interaction.model or interaction.agent or "?")


def get(args: argparse.Namespace, context: Context) -> InteractionResult:
    return _fetched(_call("get", args.id, context, lambda c: c.interactions.get(args.id)))


def delete(args: argparse.Namespace, context: Context) -> None:
    _call("delete", args.id, context, lambda c: c.interactions.delete(args.id))
    print(f"deleted {args.id}")


def cancel(args: argparse.Namespace, context: Context) -> None:
    interaction = _call("cancel", args.id, context, lambda c: c.interactions.cancel(args.id))
    print(f"{args.id}: {interaction.status}")


def wait(args: argparse.Namespace, context: Context) -> InteractionResult | TextTable:
    """Follow a background run to its end with its progress; without an id, this kernel's latest run, or
    (in a new kernel) the list of runs the journal says are still going."""
    runs = context.session.background
    interaction_id = args.id
    if interaction_id is None:  # the latest run whose end was not reported yet: a failed one fails one wait
        waiting = [i for i, r in runs.items() if not r.reported]
        if not waiting:
            return _journaled_runs(context)
        interaction_id = waiting[-1]
    run = runs.get(interaction_id)
    if run is not None:
        _show_until_done(run, context)
        run.reported = True
        if run.error and run.status == "cancelled":  # the user's own doing: a neutral ending
            raise Stopped(f"{run.id} {run.error}", kind="cancelled")
        if run.error:
            raise MagicError(f"interact wait: {run.id} ({run.status}): {run.error}")
        if run.result is not None:
            result: InteractionResult | TextTable = run.result
            return result
    return _reattach(interaction_id, context)


def _show_until_done(run: BackgroundRun, context: Context) -> None:
    """The cell's own watcher binds -o and commits the turn; this cell only shows its progress meanwhile."""
    if run.done.wait(QUIET_WAIT_SECONDS):  # a run about to end gets no progress view that would flicker
        return
    view = context.views.waiting(run) if context.views is not None else None
    try:
        while not run.done.wait(0.25):
            if view is not None:
                view.progress(run.progress)
    finally:
        if view is not None:
            view.finish(run)


def _journaled_runs(context: Context) -> TextTable:
    entries = context.session.journal().entries("interaction", running=True)
    here = str(context.session.backend().client.base_url)
    rows = [[e.id, e.model, e.out or "", e.age, "this backend" if e.base_url == here else e.base_url]
            for e in entries]  # fmt: skip
    return _table(["id", "model or agent", "-o", "started", "on"], rows,
                  "background runs still going, from earlier kernels (%interact wait ID re-attaches)",
                  empty="(none: no --background cell has run, here or in an earlier kernel)")  # fmt: skip


def _reattach(interaction_id: str, context: Context) -> InteractionResult:
    """Follow a run this kernel did not start (e.g. before a restart); bind its -o as its cell asked."""
    from ._threads import run_blocking
    from .run.follow import follow
    from .run.handle import BackgroundRun

    session = context.session
    entry = session.journal().get(interaction_id)
    backend = session.backend()
    here = str(backend.client.base_url)
    if entry is not None and entry.base_url != here:
        raise MagicError(
            f"interact wait: {interaction_id} was started on {entry.base_url}, not on this kernel's backend "
            f"({here}); set {BASE_URL_ENV_VAR} to it (an embedded server's runs end with its kernel)"
        )
    run = BackgroundRun(interaction_id, entry.model if entry else "?", entry.out if entry else None,
                        (entry.chain if entry else None) or DEFAULT_CHAIN)  # fmt: skip
    view = context.views.waiting(run) if context.views is not None else None

    def on_progress(progress: Any) -> None:
        run.progress, run.status = progress, progress.status
        if view is not None:
            view.progress(progress)

    try:
        final = _call("wait", interaction_id, context,
                      lambda c: run_blocking(follow(c, interaction_id, on_progress=on_progress)))  # fmt: skip
    finally:
        run.done.set()
        if view is not None:
            view.finish(run)
    session.journal_end(interaction_id, final.status or "?")
    result = _fetched(final)
    if entry is not None and entry.out and final.answered and final.status != "requires_action":
        session.bind(entry.out, result)
        result.notes.append(f"bound to {entry.out!r}, as the cell that started it asked")
    return result


def cache(args: argparse.Namespace, context: Context) -> TextTable | None:
    row_cache = context.session.row_cache()
    if args.action == "clear":
        print(f"cleared {row_cache.clear():,} cached row(s) from {row_cache.path}")
        return None
    count, size = row_cache.stats()
    return _table(["rows", "size", "location"], [[f"{count:,}", f"{size / 1e6:.1f} MB", str(row_cache.path)]],
                  "the --over row cache (%interact cache clear empties it)")  # fmt: skip


def batch(args: argparse.Namespace, context: Context) -> Any:
    session = context.session
    if args.action == "list":
        from .run.batch import lost

        here = str(session.backend().client.base_url)
        journaled = session.journal().entries("batch")
        first: dict[str, float] = {}
        for e in journaled:
            run = e.detail.get("run") or e.id
            first[run] = min(first.get(run, e.started), e.started)
        # a run's jobs together, in part order; newest run first
        entries = sorted(journaled, key=lambda e: (-first[e.detail.get("run") or e.id], e.detail.get("part", 0)))
        rows = [[e.id, f"{e.detail['run']} ({e.detail.get('part', 1)}/{e.detail.get('parts', 1)})" if e.detail.get("run") else "",
                 e.detail.get("source", ""), e.out or "", e.detail.get("requests", ""),
                 "lost: its embedded server ended with its kernel (forget NAME)" if lost(e, here) else e.status, e.age,
                 "this backend" if e.base_url == here else e.base_url] for e in entries]  # fmt: skip
        return _table(["job", "run (part)", "--over", "-o", "requests", "status", "age", "on"], rows,
                      "batch jobs from this and earlier kernels", empty="(none: %%interact --over NAME --batch starts one)")  # fmt: skip
    if not args.name:
        raise OptionError(f"interact batch {args.action}: give the job's name (see %interact batch list)")
    name = args.name if args.name.startswith("batches/") else f"batches/{args.name}"
    if args.action == "get":
        job = _call("batch get", name, context, lambda c: c.batches.get(name))
        stats = job.batch_stats
        return _table(["job", "state", "requests", "succeeded", "failed", "pending", "output"],
                      [[job.name, job.state, stats.request_count, stats.successful_request_count, stats.failed_request_count,
                        stats.pending_request_count, job.responses_file or ("inline" if job.output else "")]], "batch job")  # fmt: skip
    if args.action == "cancel":
        _call("batch cancel", name, context, lambda c: c.batches.cancel(name))
        print(f"{name}: cancel requested")
        return None
    if args.action == "forget":
        if not session.journal().forget(name):
            raise OptionError(f"interact batch forget: {name} is not in the journal (%interact batch list)")
        print(f"{name}: forgotten (the journal no longer lists it)")
        return None
    if args.out is not None and not args.out.isidentifier():
        raise OptionError(f"interact batch load: -o needs a Python identifier, got {args.out!r}")
    from .request import resolve_schema
    from .run.batch import load_batch

    result = load_batch(name, session, resolve_schema(args.schema, session.namespace))
    session.bind(args.out, result.frame)
    return result


def mcp(args: argparse.Namespace, context: Context) -> TextTable:
    servers = context.session.mcp().servers.values()
    rows = [[s.name, s.target, ", ".join(t.name for t in s.tools)] for s in servers]
    return _table(["server", "connected to", "tools"], rows, "MCP servers bridged by this kernel",
                  empty="(none yet: %%interact --mcp URL_OR_stdio:COMMAND connects one)")  # fmt: skip


def files(args: argparse.Namespace, context: Context) -> TextTable | None:
    uploads = context.session.uploads
    if args.action is None:
        rows = [[f.name, f.display_name or "", f.mime_type or "", f.size_bytes or "", f.state or "", f.uri or ""]
                for f in uploads.values()]  # fmt: skip
        return _table(["name", "display name", "type", "bytes", "state", "uri"], rows, "files uploaded from this kernel",
                      empty="(none yet: a {{reference}} to a big file uploads it)")  # fmt: skip
    if not args.name:
        raise OptionError("interact files delete: give the file's name (see %interact files)")
    name = args.name if args.name.startswith("files/") else f"files/{args.name}"
    _call("files delete", name, context, lambda c: c.files.delete(name))
    for digest in [d for d, f in uploads.items() if f.name == name]:
        del uploads[digest]
    print(f"deleted {name}")
    return None


def store(args: argparse.Namespace, context: Context) -> TextTable | None:
    """File search stores for ``--tools file_search:STORE``: made from files, shown, or deleted."""
    from pathlib import Path

    if args.action == "delete":
        _call("store delete", args.name, context, lambda c: c.file_search_stores.delete(args.name))
        print(f"deleted {args.name}")
        return None
    if args.action == "get":
        found = _call("store get", args.name, context, lambda c: c.file_search_stores.get(args.name))
        return _table(["store", "display name", "files"], [[found["name"], found.get("displayName", ""),
                      found.get("activeDocumentsCount", "")]], "file search store")  # fmt: skip
    missing = [p for p in args.paths if not Path(p).expanduser().is_file()]
    if not args.paths or missing:
        raise OptionError(f"interact store create {args.name}: give files to index ({', '.join(missing) or 'none given'} not found)")
    made = _call("store create", args.name, context, lambda c: c.file_search_stores.create(display_name=args.name))

    def indexed(client: Client, path: str) -> list[Any]:
        uploaded = client.files.upload(Path(path).expanduser())
        done = client.file_search_stores.import_file(made["name"], file_name=str(uploaded.name))
        return [path, uploaded.name, (done.get("response") or {}).get("passages", "")]

    rows = [_call("store create", path, context, functools.partial(indexed, path=path)) for path in args.paths]
    short = made["name"].removeprefix("fileSearchStores/")
    return _table(["file", "uploaded as", "passages"], rows,
                  f"{made['name']} ({args.name}): search it with --tools file_search:{short}")  # fmt: skip


def usage(args: argparse.Namespace, context: Context) -> TextTable:
    rows = [[m, t["interactions"], t["input"], t["output"], t["thought"], t["input"] + t["output"] + t["thought"]]
            for m, t in sorted(context.session.usage.by_model.items())]  # fmt: skip
    return _table(["model", "interactions", "input", "output", "thought", "total"], rows,
                  "token usage this session", empty="(no interactions yet)")  # fmt: skip


def models(args: argparse.Namespace, context: Context) -> TextTable:
    from .backend import key_source
    from .models import KNOWN_MODELS

    has_key = "✅" if key_source() else "❌ (no key)"
    rows = [[m.id, m.note, has_key] for m in KNOWN_MODELS]
    backend = context.session.started_backend
    if backend is not None and backend.kind != "gemini":
        rows.insert(0, ["(these ids)", f"answered by {backend.description}; others: 404 model_not_found", "✅"])
    return _table(["model", "notes", "usable"], rows, "models")


def last(args: argparse.Namespace, context: Context) -> Any:
    if context.session.last_result is None:
        raise OptionError("interact last: no %%interact cell has run yet")
    return context.session.last_result
