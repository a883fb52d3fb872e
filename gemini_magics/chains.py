"""Per-kernel conversation state: named chains of turns, re-run replacement, stateless histories.

A chain is the list of its turns; a turn remembers the cell that made it. Running a cell that
already made a turn in the chain continues from the turn *before* it and replaces it (and whatever
followed it), so iterating on a cell never stacks duplicates. Nothing here does I/O or renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_CHAIN = "default"


@dataclass
class Turn:
    cell_key: str
    interaction_ids: list[str]
    """The interactions of this turn, in order (several when a tool loop ran); empty with ``--no-store``."""
    model: str
    prompt: str
    steps: list[dict[str, Any]]
    """This turn's input and output steps: what a stateless continuation sends back."""
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def interaction_id(self) -> str | None:
        """The interaction a next turn continues from (None when not stored on the server)."""
        return self.interaction_ids[-1] if self.interaction_ids else None


@dataclass
class Plan:
    """Where a new turn goes, and what to send so the server sees the chain up to that point."""

    chain: str
    position: int
    previous_interaction_id: str | None
    history: list[dict[str, Any]]
    """Steps to send inline before the new input (only when the server cannot be asked to remember)."""
    replaces: bool
    before: tuple[Turn, ...] = ()
    """The turns the plan builds on: a commit checks the chain still starts with them."""
    cell_key: str = ""
    """The cell the new turn belongs to (a re-run of that cell replaces it)."""


@dataclass
class Chain:
    name: str
    turns: list[Turn] = field(default_factory=list)


class ChainRegistry:
    def __init__(self) -> None:
        self._chains: dict[str, Chain] = {}

    def names(self) -> list[str]:
        return sorted(self._chains)

    def get(self, name: str) -> Chain | None:
        return self._chains.get(name)

    def turns(self, name: str) -> list[Turn]:
        chain = self._chains.get(name)
        return list(chain.turns) if chain else []

    def plan(self, name: str, cell_key: str, *, new: bool = False, stateless: bool = False) -> Plan:
        turns = [] if new else self.turns(name)
        position = next((i for i, t in enumerate(turns) if t.cell_key == cell_key), len(turns))
        before = turns[:position]
        last = before[-1] if before else None
        replaces = position < len(turns)
        if last is not None and last.interaction_id is not None and not stateless:
            return Plan(name, position, last.interaction_id, [], replaces, tuple(before), cell_key)
        history = [step for turn in before for step in turn.steps]
        return Plan(name, position, None, history, replaces, tuple(before), cell_key)

    def moved_on(self, plan: Plan) -> bool:
        """Whether the turns a plan builds on are no longer the start of its chain."""
        turns = self.turns(plan.chain)
        return len(turns) < len(plan.before) or any(
            a is not b for a, b in zip(turns, plan.before, strict=False)
        )

    def commit(self, plan: Plan, turn: Turn, *, new: bool = False) -> None:
        """Record a finished turn. Only called after success: failures never advance a chain."""
        chain = self._chains.setdefault(plan.chain, Chain(plan.chain))
        kept = [] if new else chain.turns[: plan.position]
        chain.turns = kept + [turn]

    def reset(self, name: str | None = None) -> list[str]:
        """Forget one chain, or all of them (``name=None``); returns the names forgotten."""
        if name is None:
            gone = self.names()
            self._chains.clear()
            return gone
        return [name] if self._chains.pop(name, None) is not None else []
