"""Rows from where the data lives, a chunk at a time: pandas DataFrames and Series, lists, polars
DataFrames, pyarrow Tables, and Parquet, CSV or JSON-lines files (a path or a glob, read with pyarrow
datasets). Each library is imported only when such a source is used, and a file is never loaded whole.
"""

from __future__ import annotations

import glob
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OptionError

__all__ = ["CHUNK_ROWS", "FILE_KINDS", "RecordStream", "looks_like_files", "record_stream"]

FILE_KINDS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "json", ".ndjson": "json"}
CHUNK_ROWS = 16_384
"""Rows read (and rendered, and spooled) at a time."""
FIRST_CHUNK_ROWS = 256
"""Rows read first from an in-memory input: a live run's first requests go out without waiting for more."""


@dataclass(frozen=True)
class RecordStream:
    """A source's rows: how many, their labels, and the records themselves, read a chunk at a time."""

    total: int
    chunks: Callable[[], Iterator[list[dict[str, Any]]]]
    """A new pass over the records, in input order, :data:`CHUNK_ROWS` at a time."""
    index: Any = None
    """The input's labels (a pandas index, or a list); None: the rows' positions."""

    def labels(self) -> Any:
        return self.index if self.index is not None else range(self.total)


def looks_like_files(expr: str) -> bool:
    """Whether ``--over EXPR`` names files rather than a variable: a glob, or a path with a data suffix."""
    text = expr.strip()
    return any(ch in text for ch in "*?") or Path(text).suffix.lower() in FILE_KINDS or "/" in text


def record_stream(source: Any, name: str) -> RecordStream:
    """The rows of any source ``--over`` takes; a one-line error for anything else."""
    if isinstance(source, Path) or (isinstance(source, str) and looks_like_files(source)):
        return _files(str(source), name)
    pd = sys.modules.get("pandas")  # a DataFrame or Series means pandas is imported already
    if pd is not None and isinstance(source, pd.DataFrame):
        columns = [str(c) for c in source.columns]

        def frame_chunks() -> Iterator[list[dict[str, Any]]]:
            for start, end in _spans(len(source)):
                part = source.iloc[start:end]
                yield [dict(zip(columns, values, strict=True)) for values in part.itertuples(index=False, name=None)]

        return RecordStream(len(source), frame_chunks, source.index)
    if pd is not None and isinstance(source, pd.Series):
        column = str(source.name) if source.name is not None else "value"
        return RecordStream(len(source), _sliced(source.tolist(), lambda v: {column: v}), source.index)
    if isinstance(source, list | tuple):
        return RecordStream(len(source), _sliced(list(source), lambda item: _item(item, name, source)))
    columnar = _columnar(source)
    if columnar is not None:
        return columnar
    raise OptionError(
        f"--over {name}: expected a DataFrame (pandas or polars), a Series, a pyarrow Table, a list of dicts/strings "
        f"or a path to Parquet, CSV or JSON-lines files, got {type(source).__name__}"
    )


def _sliced(items: list[Any], record: Callable[[Any], dict[str, Any]]) -> Callable[[], Iterator[list[dict[str, Any]]]]:
    def chunks() -> Iterator[list[dict[str, Any]]]:
        for start, end in _spans(len(items)):
            yield [record(item) for item in items[start:end]]

    return chunks


def _spans(total: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each chunk: a small one first, then :data:`CHUNK_ROWS` at a time."""
    start = 0
    while start < total:
        end = min(total, start + (FIRST_CHUNK_ROWS if start == 0 else CHUNK_ROWS))
        yield start, end
        start = end


def _item(item: Any, name: str, items: Any) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return {str(k): v for k, v in item.items()}
    if isinstance(item, str):
        return {"text": item}
    position = next(i for i, each in enumerate(items) if each is item)
    raise OptionError(f"--over {name}: item {position} is a {type(item).__name__}; a list must hold dicts or strings")


def _columnar(source: Any) -> RecordStream | None:
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(source, polars.LazyFrame):
        source = source.collect()
    if polars is not None and isinstance(source, polars.DataFrame):
        frame = source

        def polars_chunks() -> Iterator[list[dict[str, Any]]]:
            for part in frame.iter_slices(n_rows=CHUNK_ROWS):
                yield list(part.iter_rows(named=True))

        return RecordStream(frame.height, polars_chunks)
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(source, pyarrow.Table | pyarrow.RecordBatch):
        table = source

        def arrow_chunks() -> Iterator[list[dict[str, Any]]]:
            batches = table.to_batches(max_chunksize=CHUNK_ROWS) if hasattr(table, "to_batches") else [table]
            for batch in batches:
                yield batch.to_pylist()

        return RecordStream(table.num_rows, arrow_chunks)
    return None


def _files(pattern: str, name: str) -> RecordStream:
    paths = sorted(glob.glob(str(Path(pattern).expanduser()))) if any(ch in pattern for ch in "*?[") else [pattern]
    paths = [str(Path(p).expanduser()) for p in paths]
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

    def file_chunks() -> Iterator[list[dict[str, Any]]]:
        for batch in dataset.to_batches(batch_size=CHUNK_ROWS):
            if batch.num_rows:
                yield batch.to_pylist()

    return RecordStream(dataset.count_rows(), file_chunks)
