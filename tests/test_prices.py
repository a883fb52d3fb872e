"""The price table, its overrides, and --budget's two units."""

from __future__ import annotations

import pytest

from gemini_magics.errors import OptionError
from gemini_magics.prices import parse_budget, price_of, tier_costs


@pytest.mark.parametrize(("text", "expected"), [
    ("300", (300, None)), ("50k", (50_000, None)), ("2M", (2_000_000, None)), ("1,500", (1500, None)),
    ("$5", (None, 5.0)), ("0.50$", (None, 0.5)), ("$0.05", (None, 0.05)),
])  # fmt: skip
def test_a_budget_is_tokens_or_dollars(text: str, expected: tuple[int | None, float | None]) -> None:
    assert parse_budget(text) == expected


@pytest.mark.parametrize("text", ["five", "$", "0", "-3", "$0"])
def test_a_budget_that_is_neither_says_how_to_write_one(text: str) -> None:
    with pytest.raises(OptionError) as caught:
        parse_budget(text)
    assert "--budget" in str(caught.value) and "\n" not in str(caught.value)


def test_batch_and_flex_bill_half_and_config_overrides_the_table() -> None:
    table = price_of("gemini-3-flash-preview")
    assert table is not None and "price table of" in table.source
    assert table.cost(1_000_000, 1_000_000) == pytest.approx(3.5)
    assert table.cost(1_000_000, 1_000_000, "batch") == pytest.approx(1.75) == table.cost(1_000_000, 1_000_000, "flex")
    mine = price_of("gemini-3-flash-preview", {"gemini-3-flash-preview": {"input": 1, "output": 2, "batch": {"input": 0.1, "output": 0.2}}})
    assert mine is not None and mine.source == "InteractMagics.prices"
    assert mine.cost(1_000_000, 1_000_000) == pytest.approx(3.0) and mine.cost(1_000_000, 1_000_000, "batch") == pytest.approx(0.3)
    assert mine.cost(1_000_000, 1_000_000, "flex") == pytest.approx(1.5)
    assert price_of("models/gemini-2.5-flash") is not None and price_of("local:scripted").cost(10**6, 10**6) == 0  # type: ignore[union-attr]
    assert price_of("no-such-model") is None
    assert "no price known for no-such-model" in tier_costs("no-such-model", 10, 10)


def test_smollm2_answers_under_a_grammar_whose_strings_and_lists_end() -> None:
    from gemini_magics.local.engines.smollm2 import LIST_ITEMS, STRING_CHARACTERS, bounded

    schema = {"type": "object", "properties": {
        "product": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
        "mood": {"type": "string", "enum": ["happy", "sad"]}, "code": {"type": "string", "maxLength": 4},
        "type": {"type": "integer"}}}  # fmt: skip
    shaped = bounded(schema)
    props = shaped["properties"]
    assert props["product"]["maxLength"] == STRING_CHARACTERS and props["tags"]["maxItems"] == LIST_ITEMS
    assert props["tags"]["items"]["maxLength"] == STRING_CHARACTERS and "maxLength" not in props["mood"]
    assert props["code"]["maxLength"] == 4 and props["type"] == {"type": "integer"}
    assert "maxLength" not in schema["properties"]["product"]  # the user's schema is left as it was


def test_rows_take_the_proxy_the_environment_names_unless_no_proxy_exempts_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    from gemini_magics._aio import proxy_for

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_for("https://generativelanguage.googleapis.com") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert proxy_for("https://generativelanguage.googleapis.com") == "http://proxy.example:3128"
    monkeypatch.setenv("NO_PROXY", "googleapis.com")
    assert proxy_for("https://generativelanguage.googleapis.com") is None
