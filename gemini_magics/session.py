"""Kernel-wide state: chains, usage totals, background runs, the last result and the backend.

One :class:`Session` per loaded extension. Background runs finish on their own threads, so every
change that spans several pieces of state (commit a turn, add its usage, bind ``-o``) happens under
the session's lock. Nothing here renders or parses options.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .chains import ChainRegistry, Plan, Turn

if TYPE_CHECKING:
    from .backend import Backend
    from .render.result import BackgroundRun
    from .types.interaction import Usage

__all__ = ["Session", "UsageTotals"]


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
        announce: Callable[[str], None] = print,
        engine: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.namespace: MutableMapping[str, Any] = namespace if namespace is not None else {}
        self.chains = ChainRegistry()
        self.usage = UsageTotals()
        self.background: dict[str, BackgroundRun] = {}
        self.last_result: Any = None
        self.cell_id: str | None = None
        """The id of the notebook cell running now, when the frontend sends one."""
        self._announce = announce
        self._engine = engine
        self._backend: Backend | None = None
        self._backend_env: tuple[str | None, ...] | None = None
        self._lock = threading.RLock()

    # -- chains -----------------------------------------------------------------------------------

    def cell_key(self, text: str) -> str:
        """What identifies the running cell's turn: the notebook's cell id, else a hash of its text."""
        if self.cell_id:
            return self.cell_id
        import hashlib

        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def planner(self, text: str) -> Callable[[str, bool, bool], Plan]:
        """Plans turns for the running cell (``text`` identifies it when the frontend sends no cell id)."""
        key = self.cell_key(text)
        return lambda chain, new, stateless: self.chains.plan(chain, key, new=new, stateless=stateless)

    def commit(self, plan: Plan, turn: Turn, *, new: bool, require_unchanged: bool = False) -> bool:
        """Record a finished turn; False (nothing changed) when required and the chain moved on meanwhile."""
        with self._lock:
            if require_unchanged and self.chains.moved_on(plan):
                return False
            self.chains.commit(plan, turn, new=new)
            return True

    def add_usage(self, model: str, usage: Usage | None) -> None:
        with self._lock:
            self.usage.add(model, usage)

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
        with self._lock:
            if self._backend is None or signature != self._backend_env:
                self.close_backend()
                self._backend = resolve_backend(self._announce, engine=self._engine())
                self._backend_env = signature
            return self._backend

    def close_backend(self) -> None:
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    def close(self) -> None:
        self.close_backend()
