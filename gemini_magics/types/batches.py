"""Batch API objects: a ``GenerateContentBatch`` job, flattened out of its long-running operation
(camelCase on the wire; snake_case in Python, either accepted)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

from ._base import BaseModel

__all__ = ["Batch", "BatchResult", "BatchStats", "TERMINAL_BATCH_STATES"]

TERMINAL_BATCH_STATES = frozenset(
    {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"}
)


class BatchStats(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    request_count: int = 0
    successful_request_count: int = 0
    failed_request_count: int = 0
    pending_request_count: int = 0


class Batch(BaseModel):
    """A batch job: ``state`` (``BATCH_STATE_PENDING`` … ``SUCCEEDED``), counts and, when done, ``output``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    name: str
    state: str = "BATCH_STATE_PENDING"
    model: str | None = None
    display_name: str | None = None
    create_time: str | None = None
    update_time: str | None = None
    end_time: str | None = None
    batch_stats: BatchStats = BatchStats()
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @classmethod
    def from_operation(cls, operation: dict[str, Any]) -> Batch:
        metadata = dict(operation.get("metadata") or {})
        metadata.pop("@type", None)
        metadata.setdefault("name", operation.get("name"))
        if operation.get("error"):
            metadata["error"] = operation["error"]
        return cls.model_validate(metadata)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_BATCH_STATES

    @property
    def responses_file(self) -> str | None:
        return (self.output or {}).get("responsesFile")


class BatchResult(BaseModel):
    """One request's outcome: its ``key`` (from the JSONL line or the inline ``metadata``), and the
    ``GenerateContentResponse`` or the ``error``."""

    key: str | None = None
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
