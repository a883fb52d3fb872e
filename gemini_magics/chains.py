"""Per-kernel conversation state: named chains of turns, re-run replacement, stateless histories.

A chain is the list of its turns; a turn remembers the cell that made it. Re-running a notebook cell
that already made a turn continues from the turn *before* it and replaces it: the chain rewinds, so
iterating on a prompt never stacks duplicates. The turns a rewind drops are not lost: every turn
ever committed stays in the chain's archive, numbered, with its parent, and :meth:`restore` puts
a chain back to end at any of them. Nothing here does I/O or renders.
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
    number: int = 0
    """Its number in the chain's archive (1, 2, ...), given when committed."""
    parent: Turn | None = None
    """The turn it continued from (None for a chain's first turn)."""

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
    seen: tuple[Turn, ...] = ()
    """The whole chain when the plan was made: a commit checks nothing landed meanwhile."""


@dataclass
class Chain:
    name: str
    turns: list[Turn] = field(default_factory=list)
    archive: list[Turn] = field(default_factory=list)
    """Every turn ever committed to this chain, in commit order, dropped ones included."""


@dataclass(frozen=True)
class Rewind:
    """What a commit did to the chain beyond appending: the later turns it dropped."""

    position: int
    dropped: tuple[Turn, ...]


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
        current = self.turns(name)
        turns = [] if new else current
        position = next((i for i, t in enumerate(turns) if t.cell_key == cell_key), len(turns))
        before = turns[:position]
        last = before[-1] if before else None
        replaces = position < len(turns)
        if last is not None and last.interaction_id is not None and not stateless:
            return Plan(
                name, position, last.interaction_id, [], replaces, tuple(before), cell_key, tuple(current)
            )
        history = [step for turn in before for step in turn.steps]
        return Plan(name, position, None, history, replaces, tuple(before), cell_key, tuple(current))

    def moved_on(self, plan: Plan) -> bool:
        """Whether another turn landed in the chain since the plan was made (a background run's)."""
        turns = self.turns(plan.chain)
        return len(turns) != len(plan.seen) or any(a is not b for a, b in zip(turns, plan.seen, strict=True))

    def commit(self, plan: Plan, turn: Turn, *, new: bool = False) -> Rewind | None:
        """Record a finished turn (only after success: failures never advance a chain).

        Returns what it dropped when the turn replaced earlier ones (a re-run, or ``--new``), else None.
        """
        chain = self._chains.setdefault(plan.chain, Chain(plan.chain))
        kept = [] if new else chain.turns[: plan.position]
        dropped = tuple(chain.turns[len(kept) :])
        turn.number = len(chain.archive) + 1
        turn.parent = kept[-1] if kept else None
        chain.archive.append(turn)
        chain.turns = kept + [turn]
        return Rewind(len(kept) + 1, dropped) if dropped else None

    def set_aside(self, plan: Plan, turn: Turn) -> int:
        """Keep a turn whose chain moved on meanwhile (a background run) in the archive only: listed by
        ``history --all`` and restorable, never silently lost. Returns its number."""
        chain = self._chains.setdefault(plan.chain, Chain(plan.chain))
        turn.number = len(chain.archive) + 1
        turn.parent = plan.before[-1] if plan.before else None
        chain.archive.append(turn)
        return turn.number

    def archive(self, name: str) -> list[Turn]:
        chain = self._chains.get(name)
        return list(chain.archive) if chain else []

    def restore(self, name: str, number: int) -> tuple[list[Turn], list[Turn]]:
        """Make the chain end at archived turn ``number`` again; returns (the chain now, turns it left)."""
        chain = self._chains[name]
        target = next(t for t in chain.archive if t.number == number)
        path: list[Turn] = []
        node: Turn | None = target
        while node is not None:
            path.append(node)
            node = node.parent
        path.reverse()
        left = [t for t in chain.turns if all(t is not p for p in path)]
        chain.turns = path
        return path, left

    def reset(self, name: str | None = None) -> list[str]:
        """Forget one chain, or all of them (``name=None``); returns the names forgotten."""
        if name is None:
            gone = self.names()
            self._chains.clear()
            return gone
        return [name] if self._chains.pop(name, None) is not None else []
