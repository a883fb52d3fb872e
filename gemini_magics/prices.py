"""What tokens cost: a dated price table for the Gemini models, overridable by config.

Prices are US dollars per million tokens on the paid tier of the Gemini Developer API, for prompts up to
200k tokens (the longer-prompt rates of the Pro models are not used: ``--over`` rows are short). The
Batch API bills half the standard rate; Flex bills half as well. The table is a snapshot: Google changes
prices, so ``InteractMagics.prices`` overrides any model (``{"gemini-3-flash-preview": {"input": 0.5,
"output": 3.0}}``, optionally with ``"batch"`` and ``"flex"`` pairs of their own) and every figure shown
says the table's date. The embedded local models cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import OptionError

__all__ = ["PRICES_AS_OF", "Price", "cost_of", "parse_budget", "price_of", "tier_costs"]

PRICES_AS_OF = "2026-07-04"
"""When the table was read off https://ai.google.dev/gemini-api/docs/pricing."""

TIERS = ("standard", "flex", "batch")
_DISCOUNT = {"standard": 1.0, "flex": 0.5, "batch": 0.5}

_TABLE: dict[str, tuple[float, float]] = {
    "gemini-3.1-pro-preview": (2.00, 12.00),
    "gemini-3-pro-preview": (2.00, 12.00),
    "gemini-3-flash-preview": (0.50, 3.00),
    "gemini-3.1-flash-lite-preview": (0.25, 1.50),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
}
"""Standard input and output prices, $ per million tokens (output includes thinking tokens)."""


@dataclass(frozen=True)
class Price:
    """$ per million input and output tokens on each tier."""

    model: str
    rates: Mapping[str, tuple[float, float]]
    source: str

    def cost(self, input_tokens: int, output_tokens: int, tier: str = "standard") -> float:
        rate_in, rate_out = self.rates[tier]
        return (input_tokens * rate_in + output_tokens * rate_out) / 1_000_000


def price_of(model: str, overrides: Mapping[str, Any] | None = None) -> Price | None:
    """The model's prices (config first, then the table; ``local:…`` costs nothing); None when unknown."""
    name = model.removeprefix("models/")
    given = (overrides or {}).get(name)
    if isinstance(given, Mapping):
        standard = (float(given["input"]), float(given["output"]))
        rates = {tier: _pair(given.get(tier)) or (standard[0] * _DISCOUNT[tier], standard[1] * _DISCOUNT[tier])
                 for tier in TIERS}  # fmt: skip
        rates["standard"] = standard
        return Price(name, rates, "InteractMagics.prices")
    if name.startswith("local:") or name in ("scripted", "smollm2"):
        return Price(name, {tier: (0.0, 0.0) for tier in TIERS}, "the embedded local server (free)")
    base = _TABLE.get(name)
    if base is None:
        return None
    rates = {tier: (base[0] * _DISCOUNT[tier], base[1] * _DISCOUNT[tier]) for tier in TIERS}
    return Price(name, rates, f"the price table of {PRICES_AS_OF}")


def _pair(value: Any) -> tuple[float, float] | None:
    if isinstance(value, Mapping):
        return (float(value["input"]), float(value["output"]))
    return None


def cost_of(model: str, input_tokens: int, output_tokens: int, tier: str = "standard",
            overrides: Mapping[str, Any] | None = None) -> float | None:  # fmt: skip
    price = price_of(model, overrides)
    return price.cost(input_tokens, output_tokens, tier) if price is not None else None


def tier_costs(model: str, input_tokens: int, output_tokens: int, overrides: Mapping[str, Any] | None = None) -> str:
    """``$0.42 standard · $0.21 flex · $0.21 batch (price table of …)``, or why there is no figure."""
    price = price_of(model, overrides)
    if price is None:
        return f"no price known for {model} (InteractMagics.prices can give one)"
    figures = " · ".join(f"{money(price.cost(input_tokens, output_tokens, tier))} {tier}" for tier in TIERS)
    return f"{figures} ({price.source})"


def money(amount: float) -> str:
    if amount == 0:
        return "$0"
    return f"${amount:,.2f}" if amount >= 1 else f"${amount:.4f}".rstrip("0")


def parse_budget(text: str) -> tuple[int | None, float | None]:
    """``--budget``: a number of tokens (``300``, ``50k``, ``2M``) or a cost in dollars (``$5``, ``0.5$``)."""
    raw = text.strip().replace(",", "").replace("_", "")
    dollars = raw.startswith("$") or raw.endswith("$")
    number = raw.strip("$")
    scale = {"k": 1_000, "m": 1_000_000}.get(number[-1:].lower(), 1) if not dollars else 1
    if scale != 1:
        number = number[:-1]
    try:
        value = float(number) * scale
    except ValueError:
        raise OptionError(f"--budget {text}: give tokens (300, 50k, 2M) or dollars ($5, $0.50)") from None
    if value <= 0 or (not dollars and value < 1):
        raise OptionError(f"--budget {text}: it must be more than nothing")
    return (None, value) if dollars else (int(value), None)
