"""Batch API objects: a ``GenerateContentBatch`` job (flattened out of its long-running operation)."""

from __future__ import annotations

from typing import Any

from ._base import BaseModel

__all__ = ["Batch", "BatchResult", "BatchStats", "TERMINAL_BATCH_STATES"]

TERMINAL_BATCH_STATES = frozenset(
    {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"}
)


class BatchStats(BaseModel):
    requestCount: int = 0
    successfulRequestCount: int = 0
    failedRequestCount: int = 0
    pendingRequestCount: int = 0


class Batch(BaseModel):
    """A batch job: ``state`` (``BATCH_STATE_PENDING`` … ``SUCCEEDED``), counts and, when done, ``output``."""

    name: str
    state: str = "BATCH_STATE_PENDING"
    model: str | None = None
    displayName: str | None = None
    createTime: str | None = None
    updateTime: str | None = None
    endTime: str | None = None
    batchStats: BatchStats = BatchStats()
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
