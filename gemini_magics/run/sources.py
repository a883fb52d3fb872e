"""Rows from where the data lives: polars DataFrames, pyarrow Tables, and Parquet, CSV or JSON-lines files
(a path or a glob), read a batch at a time with pyarrow. Each is imported only when such a source is used.
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path
from typing import Any

from ..errors import OptionError

__all__ = ["FILE_KINDS", "columnar_records", "looks_like_files"]

FILE_KINDS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "json", ".ndjson": "json"}
BATCH_ROWS = 65_536
"""Rows read at a time from a file (the whole file is never loaded at once)."""


def looks_like_files(expr: str) -> bool:
    """Whether ``--over EXPR`` names files rather than a variable: a glob, or a path with a data suffix."""
    text = expr.strip()
    return any(ch in text for ch in "*?") or Path(text).suffix.lower() in FILE_KINDS or "/" in text


def columnar_records(source: Any, name: str) -> list[dict[str, Any]] | None:
    """The records of a polars DataFrame, a pyarrow Table or files; None for any other source."""
    if isinstance(source, Path) or (isinstance(source, str) and looks_like_files(source)):
        return _file_records(str(source), name)
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(source, polars.DataFrame):
        return list(source.iter_rows(named=True))
    if polars is not None and isinstance(source, polars.LazyFrame):
        return [row for batch in source.collect_batches() for row in batch.iter_rows(named=True)]
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(source, pyarrow.Table | pyarrow.RecordBatch):
        return [row for batch in _batches(source) for row in batch.to_pylist()]
    return None


def _batches(table: Any) -> Any:
    return table.to_batches(max_chunksize=BATCH_ROWS) if hasattr(table, "to_batches") else [table]


def _file_records(pattern: str, name: str) -> list[dict[str, Any]]:
    paths = sorted(glob.glob(str(Path(pattern).expanduser()))) if any(ch in pattern for ch in "*?[") else [pattern]
    if not paths or not all(Path(p).is_file() for p in paths):
        raise OptionError(f"--over {name}: no such file (a Parquet, CSV or JSON-lines file, or a glob of them)")
    kinds = {FILE_KINDS.get(Path(p).suffix.lower()) for p in paths}
    if None in kinds or len(kinds) != 1:
        raise OptionError(f"--over {name}: files must all be Parquet (.parquet), CSV (.csv) or JSON lines (.jsonl)")
    try:
        import pyarrow.dataset as ds  # type: ignore[import-untyped]
    except ImportError:
        raise OptionError(f"--over {name}: reading files needs pyarrow: pip install 'gemini-magics[files]'") from None
    kind = kinds.pop()
    dataset = ds.dataset(paths, format=ds.JsonFileFormat() if kind == "json" else kind)
    return [row for batch in dataset.to_batches(batch_size=BATCH_ROWS) for row in batch.to_pylist()]
