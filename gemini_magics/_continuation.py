"""``requires_continuation``: an answer the server hands back in hops, continued the way the official SDKs
continue it (google-genai 3.6.1's automatic continuation).

An interaction that stops at the per-request decode limit ends ``requires_continuation`` with a
``continuation_token``. The next hop sends the token: with ``store`` on, as a continuation of the
interaction that issued it (``previous_interaction_id``, no ``input``); with ``store=False``, with the
original request again. The hops are then one answer: the last hop's id and status, every hop's steps
(later hops' leading ``user_input`` steps dropped), usage summed, and ``continuation_ids`` naming them.
Pure functions: the loops live in ``resources/interactions.py`` and ``_streaming.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .types.content import UserInputStep
from .types.interaction import Interaction, Usage

__all__ = ["MAX_HOPS", "continuation_body", "merge_hops", "next_token"]

MAX_HOPS = 50
"""Hops at most in one answer: a server that never finishes must not loop forever."""


def next_token(interaction: Interaction, sent: str | None) -> str | None:
    """The token to continue from, or None: the answer is whole (or the server handed back the token it
    was given, which would loop without progress)."""
    token = interaction.continuation_token if interaction.status == "requires_continuation" else None
    return token if token and token != sent else None


def continuation_body(body: Mapping[str, Any], token: str, owner_id: str) -> dict[str, Any]:
    """The create body of the hop that continues from ``token`` (issued by interaction ``owner_id``)."""
    hop = {k: v for k, v in body.items() if k != "stream"}
    hop["continuation_token"] = token
    if body.get("store") is not False and owner_id:
        hop["previous_interaction_id"] = owner_id
        hop.pop("input", None)
    return hop


def merge_hops(hops: list[Interaction]) -> Interaction:
    """The hops of one answer as one interaction (see the module's docstring)."""
    if len(hops) == 1:
        return hops[0]
    first, final = hops[0], hops[-1]
    steps: list[Any] = list(first.steps or [])
    for hop in hops[1:]:
        later = list(hop.steps or [])
        while later and isinstance(later[0], UserInputStep):
            later.pop(0)
        steps += later
    merged = final.to_dict()
    merged.update(steps=[step.to_dict() for step in steps], continuation_ids=[h.id for h in hops if h.id],
                  previous_interaction_id=first.previous_interaction_id, created=first.created)  # fmt: skip
    merged.pop("outputs", None)
    usage = _summed([h.usage for h in hops])
    if usage is not None:
        merged["usage"] = usage.to_dict()
    return Interaction.model_validate(merged)


def _summed(usages: list[Usage | None]) -> Usage | None:
    present = [u for u in usages if u is not None]
    if not present:
        return None
    totals: dict[str, Any] = {}
    for usage in present:
        for name, value in usage.to_dict().items():
            if isinstance(value, int) and not isinstance(value, bool):
                totals[name] = totals.get(name, 0) + value
            elif isinstance(value, list):
                totals[name] = _summed_list(totals.get(name, []), value)
    return Usage.model_validate(totals)


def _summed_list(so_far: list[dict[str, Any]], more: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``[{modality, tokens}]`` (or ``[{type, count}]``) lists, summed per key."""
    merged = {(_key(item)): dict(item) for item in so_far}
    for item in more:
        key = _key(item)
        if key in merged:
            for field, value in item.items():
                if isinstance(value, int):
                    merged[key][field] = merged[key].get(field, 0) + value
        else:
            merged[key] = dict(item)
    return list(merged.values())


def _key(item: dict[str, Any]) -> str:
    return str(item.get("modality", item.get("type", "")))
