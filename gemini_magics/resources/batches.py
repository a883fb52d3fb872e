"""``client.batches``: the Gemini Batch API (``models/{model}:batchGenerateContent`` and ``batches/…``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..types.batches import Batch, BatchResult

if TYPE_CHECKING:
    from .._client import Client

INLINE_LIMIT_BYTES = 20 * 1000 * 1000
"""Inline requests may take up to 20 MB; bigger jobs go through a JSONL file (``file_name=``)."""


def _batch_name(name: str) -> str:
    return name if name.startswith("batches/") else f"batches/{name}"


class Batches:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self,
        *,
        model: str,
        requests: Sequence[Mapping[str, Any]] | None = None,
        file_name: str | None = None,
        display_name: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Batch:
        """Start a job: ``requests`` inline (``{"request": GenerateContentRequest, "metadata": {...}}`` each),
        or ``file_name`` of an uploaded JSONL file (``{"key": ..., "request": ...}`` per line)."""
        if (requests is None) == (file_name is None):
            raise ValueError("batches.create needs requests=... or file_name=..., not both")
        config: dict[str, Any] = (
            {"fileName": file_name} if file_name else {"requests": {"requests": list(requests or [])}}
        )
        batch: dict[str, Any] = {"inputConfig": config}
        if display_name:
            batch["displayName"] = display_name
        model_path = model if model.startswith("models/") else f"models/{model}"
        response = self._client._post(f"{model_path}:batchGenerateContent", json={"batch": batch},
                                      extra_headers=extra_headers)  # fmt: skip
        return Batch.from_operation(response.json())

    def get(self, name: str) -> Batch:
        return Batch.from_operation(self._client._get(_batch_name(name)).json())

    def list(self, *, page_size: int = 50) -> Iterator[Batch]:
        """Every job, newest first, following ``nextPageToken`` pages lazily."""
        for operation in self._client._pages("batches", "operations", page_size):
            yield Batch.from_operation(operation)

    def cancel(self, name: str) -> None:
        self._client._post(f"{_batch_name(name)}:cancel", json={})

    def delete(self, name: str) -> None:
        self._client._delete(_batch_name(name))

    def results(self, batch: Batch) -> Iterator[BatchResult]:
        """A finished job's outcomes, each with its key (inline ``metadata.key`` or the JSONL line's); a
        results file is read as a stream, a line at a time (it may hold a million of them)."""
        if batch.responses_file:
            for line in self._client.files.lines(batch.responses_file):
                if line.strip():
                    yield BatchResult.model_validate(json.loads(line))
            return
        inline = ((batch.output or {}).get("inlinedResponses") or {}).get("inlinedResponses") or []
        yield from [
            BatchResult(
                key=(item.get("metadata") or {}).get("key"),
                response=item.get("response"),
                error=item.get("error"),
            )
            for item in inline
        ]
