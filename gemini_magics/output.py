"""Structured output: parse the answer's JSON and validate it against a pydantic model or JSON schema."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(?P<body>.*?)\n\s*```\s*$", re.DOTALL)


class StructuredOutputError(ValueError):
    """The answer is not JSON, or not valid for the schema; the message is one line."""


def strip_fences(text: str) -> str:
    match = _FENCE.match(text)
    return match.group("body") if match else text.strip()


def parse_structured(text: str, schema: Any) -> Any:
    """A pydantic model instance (``schema`` a model class) or the validated JSON value (a JSON-schema dict)."""
    raw = strip_fences(text)
    validate_json = getattr(schema, "model_validate_json", None)
    if isinstance(schema, type) and callable(validate_json):
        from pydantic import ValidationError

        try:
            return validate_json(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "the answer"
            more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise StructuredOutputError(f"{where}: {err['msg']}{more}") from None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StructuredOutputError(f"not JSON ({exc.msg} at character {exc.pos})") from None
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema is a dependency
        return value
    validator_cls = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_cls(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.path) or "the answer"
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        raise StructuredOutputError(f"{where}: {first.message}{more}")
    return value
