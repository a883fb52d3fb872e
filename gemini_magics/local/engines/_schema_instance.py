"""A deterministic instance of a JSON schema, seeded from the words and numbers of a prompt."""

from __future__ import annotations

import re
from typing import Any

_WORD = re.compile(r"\b[A-Z][a-zA-Z]+\b")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# capitalised only because they start an instruction; not values worth extracting
_STOPWORDS = frozenset(
    [
        "A",
        "An",
        "The",
        "This",
        "That",
        "These",
        "Those",
        "Call",
        "Use",
        "Get",
        "Give",
        "Find",
        "Show",
        "Tell",
        "List",
        "Extract",
        "Please",
        "What",
        "Who",
        "Where",
        "When",
        "Which",
        "Why",
        "How",
        "Is",
        "Are",
        "Do",
        "Does",
        "Can",
        "Could",
        "Would",
        "Should",
        "Make",
        "Write",
        "Describe",
        "Summarise",
        "Summarize",
        "Return",
        "I",
        "It",
    ]
)


class _Source:
    def __init__(self, text: str) -> None:
        self.words = [w for w in _WORD.findall(text) if w not in _STOPWORDS]
        self.numbers = _NUMBER.findall(text)

    def word(self, name: str) -> str:
        return self.words.pop(0) if self.words else f"example {name}".strip()

    def number(self) -> str | None:
        return self.numbers.pop(0) if self.numbers else None


def instance_of(schema: dict[str, Any], prompt: str) -> Any:
    return _build(schema, schema, _Source(prompt), "")


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    while isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
        ref = schema.get("$ref") if schema.get("$ref") != ref else None
    return schema


def _build(schema: dict[str, Any], root: dict[str, Any], src: _Source, name: str) -> Any:
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            options = [o for o in schema[key] if _resolve(o, root).get("type") != "null"] or schema[key]
            return _build(options[0], root, src, name)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {key: _build(sub, root, src, key) for key, sub in props.items()}
    if kind == "array":
        low = int(schema.get("minItems", 2))
        high = int(schema.get("maxItems", max(low, 2)))
        count = max(low, min(2, high))
        return [_build(schema.get("items", {}), root, src, name) for _ in range(count)]
    if kind == "integer":
        n = src.number()
        value = int(float(n)) if n is not None else 1
        return _clamp(value, schema)
    if kind == "number":
        n = src.number()
        return _clamp(float(n) if n is not None else 1.5, schema)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    fmt = schema.get("format")
    if fmt == "date":
        return "2024-01-01"
    if fmt == "date-time":
        return "2024-01-01T00:00:00Z"
    return src.word(name)


def _clamp(value: Any, schema: dict[str, Any]) -> Any:
    if "minimum" in schema and value < schema["minimum"]:
        value = schema["minimum"]
    if "maximum" in schema and value > schema["maximum"]:
        value = schema["maximum"]
    return value
