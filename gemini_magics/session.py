"""Kernel-wide state: chains, usage totals, background runs, the last result and the backend.

One :class:`Session` per loaded extension. Background runs finish on their own threads, so every
change that spans several pieces of state (commit a turn, add its usage, bind ``-o``) happens under
the session's lock. Nothing here renders or parses options.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chains import ChainRegistry, Plan, Rewind, Turn

if TYPE_CHECKING:
    from .backend import Backend
    from .cache import RowCache
    from .journal import Journal, JournalEntry
    from .ledger import Ledger
    from .local.child import Starting
    from .local.policy import Policy
    from .run.handle import BackgroundRun
    from .types.interaction import Usage

__all__ = ["Session", "UsageTotals", "Commit"]


@dataclass(frozen=True)
class Commit:
    """What committing a turn did: whether it was added, and the turns a rewind dropped."""

    added: bool
    rewind: Rewind | None
    set_aside: int | None = None
    """When not added: the turn's number in the chain's archive (``%interact restore N`` adds it)."""


@dataclass
class UsageTotals:
    """Token totals of this session, by the model that answered."""

    by_model: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, model: str, usage: Usage | None) -> None:
        totals = self.by_model.setdefault(model, {"interactions": 0, "input": 0, "output": 0, "thought": 0})
        totals["interactions"] += 1
        if usage is not None:
            totals["input"] += usage.total_input_tokens or 0
            totals["output"] += usage.total_output_tokens or 0
            totals["thought"] += usage.total_thought_tokens or 0


class Session:
    """The state one kernel's ``%%interact`` cells share."""

    def __init__(
        self,
        namespace: MutableMapping[str, Any] | None = None,
        *,
        engine: Callable[[], str | None] = lambda: None,
        cache_dir: Callable[[], str] = lambda: "",
        policy: Callable[[], Policy | None] = lambda: None,
    ) -> None:
        self.namespace: MutableMapping[str, Any] = namespace if namespace is not None else {}
        self.chains = ChainRegistry()
        self.usage = UsageTotals()
        self._background: dict[str, BackgroundRun] = {}
        self._last_result: Any = None
        self.uploads: dict[str, Any] = {}
        self._mcp: Any = None
        """Files this kernel uploaded, by the sha256 of their bytes (each goes up once)."""
        self.cell_id: str | None = None
        """The id of the notebook cell running now, when the frontend sends one."""
        self.notices: list[str] = []
        """One-line notices for the user (e.g. which backend was chosen), shown when the cell ends."""
        self._engine = engine
        self._cache_dir = cache_dir
        self._policy = policy
        self._starting: Starting | None = None
        self._prestarting: threading.Thread | None = None
        self._row_cache: RowCache | None = None
        self._ledger: Ledger | None = None
        self._backend: Backend | None = None
        self._backend_env: tuple[str | None, ...] | None = None
        self._lock = threading.RLock()

    # -- chains -----------------------------------------------------------------------------------

    def cell_key(self) -> str:
        """What identifies the running cell's turn: the notebook's cell id.

        Without one (terminal IPython, scripts) every cell is a new turn: the same text sent twice
        ("Continue.") is two turns, never a re-run that would rewind the chain.
        """
        return self.cell_id or f"anonymous-{os.urandom(8).hex()}"

    def planner(self) -> Callable[[str, bool, bool], Plan]:
        """Plans the running cell's turn in a chain: ``(chain, new, stateless) -> Plan``."""
        key = self.cell_key()
        return lambda chain, new, stateless: self.chains.plan(chain, key, new=new, stateless=stateless)

    def commit(
        self, plan: Plan, turn: Turn, *, new: bool, out: str | None = None, result: Any = None,
        usage: Sequence[tuple[str, Usage | None]] = (),
    ) -> Commit:
        """Record a finished turn (if another turn landed in its chain meanwhile, set it aside instead), add
        its usage and bind ``-o`` to its result, all in one span of the lock: a background run finishing
        at the same moment sees either none of it or all of it."""
        with self._lock:
            if self.chains.moved_on(plan):
                done = Commit(False, None, self.chains.set_aside(plan, turn))
            else:
                done = Commit(True, self.chains.commit(plan, turn, new=new))
            for model, used in usage:
                self.usage.add(model, used)
            self.bind(out, result)
            return done

    def restore(self, chain: str, number: int) -> tuple[list[Turn], list[Turn]]:
        """Make ``chain`` end at turn #``number`` again, under the lock background commits take."""
        with self._lock:
            return self.chains.restore(chain, number)

    def reset(self, chain: str | None) -> list[str]:
        """Forget ``chain`` (or every chain), under the lock background commits take; the names forgotten."""
        with self._lock:
            return self.chains.reset(chain)

    def _notice(self, line: str) -> None:
        with self._lock:
            self.notices.append(line)

    def pop_notices(self) -> list[str]:
        with self._lock:
            notices, self.notices[:] = list(self.notices), []
            return notices

    def add_usage(self, model: str, usage: Usage | None) -> None:
        with self._lock:
            self.usage.add(model, usage)

    @property
    def last_result(self) -> Any:
        """The last cell's result (a failed or stopped one too): what ``%interact last`` shows."""
        return self._last_result

    def remember(self, result: Any) -> None:
        """Make ``result`` the last result (from any thread)."""
        with self._lock:
            self._last_result = result

    @property
    def background(self) -> dict[str, BackgroundRun]:
        """Background runs and batch jobs started in this kernel, by id (a copy: add with :meth:`add_run`)."""
        with self._lock:
            return dict(self._background)

    def add_run(self, run: Any) -> None:
        with self._lock:
            self._background[run.id] = run

    def bind(self, name: str | None, value: Any) -> None:
        """Bind ``-o NAME`` in the user's namespace (from any thread)."""
        if name:
            with self._lock:
                self.namespace[name] = value

    # -- the backend ------------------------------------------------------------------------------

    @property
    def started_backend(self) -> Backend | None:
        """The backend if one was resolved already (nothing is started by asking)."""
        return self._backend

    def backend(self) -> Backend:
        """The backend for the current environment, resolved (and the local server started) on first use."""
        from .backend import environment_signature, resolve_backend

        signature = environment_signature()
        self._prestarted()
        with self._lock:
            self.check_server()
            if self._backend is None or signature != self._backend_env:
                previous = self._backend
                self.close_backend()
                starting, self._starting = self._starting, None
                self._backend = resolve_backend(self.notices.append, engine=self._engine(), policy=self._policy(),
                                                starting=starting)  # fmt: skip
                self._backend_env = signature
                if previous is not None and previous.kind == "local":
                    self._forget_local_chains(previous)
            elif self._backend.server is not None:
                self._backend.server.set_policy(self._policy() or _no_policy())
            return self._backend

    def prestart(self) -> None:
        """Start the embedded server early when the environment will choose it: from a thread, so
        ``%load_ext`` stays quick, and the server's start overlaps whatever the user does next."""

        def spawn() -> None:
            from .backend import prestart

            with self._lock:
                if self._backend is None and self._starting is None:
                    self._starting = prestart(self._engine(), self._policy() or _no_policy())

        self._prestarting = threading.Thread(target=spawn, daemon=True, name="gemini-magics-prestart")
        self._prestarting.start()

    def _prestarted(self) -> None:
        """Wait for a prestart in flight (it holds the lock only for a moment, once its imports are done)."""
        thread, self._prestarting = self._prestarting, None
        if thread is not None:
            thread.join()

    def check_server(self) -> None:
        """Notice an embedded server that died since the last cell (its chains reset, with a notice)."""
        with self._lock:
            if self._backend is not None and self._backend.kind == "local":
                self._notice_death(self._backend)

    def server_death(self, wait: float = 1.0, *, short: bool = False) -> str | None:
        """If the embedded server died (its connections just broke), the one line saying how, with what
        was reset; the next cell starts a fresh server. None when it runs, or for other backends.
        ``short``: only how it died (for a row's error); what was reset goes to the notices then."""
        with self._lock:
            backend = self._backend
            if backend is None or backend.kind != "local":
                return None
            died = backend.death(wait)
            if died is None:
                return None
            gone = self._notice_death(backend, quiet=not short)
        if short:
            return died
        return f"{died}{_afresh(gone)}. The kernel and its variables are fine; the next cell starts a fresh server"

    def _notice_death(self, backend: Backend, *, quiet: bool = False) -> list[str]:
        """Drop a dead embedded server and the chains stored on it (with a notice unless ``quiet``)."""
        died = backend.death()
        if died is None:
            return []
        self.close_backend()
        gone = self.chains.reset(None)
        if not quiet:
            self.notices.append(f"gemini-magics: {died}{_afresh(gone)}; a fresh server takes over")
        return gone

    def backend_identity(self) -> str:
        """What answers this kernel's requests, for cache keys: the engine of an embedded server (whose
        port changes with every kernel), else the base URL."""
        backend = self.backend()
        if backend.kind == "local" and backend.engine is not None:
            return f"local:{backend.engine.name}"
        return backend.base_url

    def _forget_local_chains(self, previous: Backend) -> None:
        """A stopped embedded server took its stored interactions with it: chains on it cannot go on."""
        gone = self.chains.reset(None)
        if gone:
            self.notices.append(
                f"gemini-magics: the embedded server ({previous.description}) was stopped and its "
                f"interactions went with it, so chain(s) {', '.join(gone)} start afresh"
            )

    def stop_local_backend(self) -> None:
        """Stop the embedded server (the next cell starts it anew, e.g. on another engine)."""
        with self._lock:
            previous = self._backend
            if previous is not None and previous.kind == "local":
                self.close_backend()
                self._forget_local_chains(previous)

    def close_backend(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    def cache_dir(self) -> Path:
        """Where the journal and the row cache live: ``InteractMagics.cache_dir``, else the platform's."""
        from .journal import default_cache_dir

        configured = self._cache_dir()
        return Path(configured).expanduser() if configured else default_cache_dir()

    def row_cache(self) -> RowCache:
        """The on-disk cache of ``--over`` rows, opened at first use and kept open."""
        from .cache import RowCache

        self._row_cache = self._in_cache_dir(self._row_cache, lambda directory: RowCache(directory, notify=self._notice))
        return self._row_cache

    def ledger(self) -> Ledger:
        """Where ``--batch`` runs keep their rows and results (beside the row cache), opened at first use."""
        from .ledger import Ledger

        self._ledger = self._in_cache_dir(self._ledger, Ledger)
        return self._ledger

    def _in_cache_dir(self, current: Any, make: Callable[[Path], Any]) -> Any:
        """``current`` if it is open in the cache folder now configured, else ``make``'s (the old one closed)."""
        with self._lock:
            directory = self.cache_dir()
            if current is None or current.path.parent != directory:
                if current is not None:
                    current.close()
                current = make(directory)
            return current

    def journal(self) -> Journal:
        from .journal import Journal

        return Journal(self.cache_dir())

    def journal_start(self, entry: JournalEntry) -> None:
        """Write a long run to the journal; a cache dir that cannot be written is a notice, never a failure
        (the run goes on either way)."""
        import sqlite3

        try:
            self.journal().add(entry)
        except (OSError, sqlite3.Error) as exc:
            self.notices.append(
                f"gemini-magics: could not journal {entry.id} ({exc}); note its id, it runs on"
            )

    def journal_end(self, entry_id: str, status: str) -> None:
        """Mark a run known to have ended (a run whose end was not seen stays listed)."""
        import sqlite3

        with contextlib.suppress(OSError, sqlite3.Error):
            self.journal().end(entry_id, status)

    def mcp(self) -> Any:
        """The kernel's MCP bridge (``mcp_bridge.MCPBridge``), made at first use: connections live as long."""
        with self._lock:
            if self._mcp is None:
                from .mcp_bridge import MCPBridge

                self._mcp = MCPBridge()
            return self._mcp

    def close(self) -> None:
        self._prestarted()
        with self._lock:
            starting, self._starting = self._starting, None
        if starting is not None:
            starting.discard()
        self.close_backend()
        if self._row_cache is not None:
            self._row_cache.close()
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None
        if self._mcp is not None:
            self._mcp.close()


def _no_policy() -> Policy:
    from .local.policy import Policy

    return Policy()


def _afresh(chains: list[str]) -> str:
    return f"; chain(s) {', '.join(chains)} start afresh" if chains else ""
