"""What an ended interaction's answer is worth: cut or whole, matching ``--schema`` or not.

One check for every way a cell runs (a single turn, a row, a batch result), so they all say the same
thing about the same answer. Pure: no I/O, no IPython.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .request import Schema
    from .types.interaction import Interaction

__all__ = ["Problem", "answered_by", "cut_note", "one_line", "structured"]


class Problem(NamedTuple):
    """Why an answer cannot be used as asked: ``cut`` (the token limit) or ``validation`` (the schema)."""

    kind: str
    message: str


def cut_note(max_output_tokens: int | None, final: Interaction) -> str | None:
    """For an answer cut at the output-token limit: what happened and what to do (None if it was not)."""
    if final.status != "incomplete":
        return None
    details = getattr(final, "incomplete_details", None) or {}
    limit = max_output_tokens or details.get("max_output_tokens")
    at = f"the {limit}-token limit" if limit else "the output-token limit"
    return f"stopped at {at}: raise --max-tokens"


def structured(text: str, schema: Schema, cut: str | None) -> tuple[Any, Problem | None]:
    """The answer's data under ``schema``, or why there is none."""
    from .output import StructuredOutputError, parse_structured

    try:
        return parse_structured(text, schema.target), None
    except StructuredOutputError as exc:
        if cut:
            return None, Problem("cut", f"cut before its JSON was complete ({cut})")
        return None, Problem("validation", f"the answer does not match --schema {schema.name}: {exc}")


def one_line(text: str) -> str:
    """``text`` folded onto one line, at most 300 characters (a DataFrame cell, a summary)."""
    return " ".join(text.split())[:300]


def answered_by(requested: str, served: str | None) -> str:
    """Who answered, as footers say it: the server's word for what served the request when it differs
    from the model asked for (``local:scripted (asked for gemini-3-flash-preview)``), else the model."""
    if served and served != requested:
        return f"{served} (asked for {requested})"
    return requested
