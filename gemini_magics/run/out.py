"""``--out PATH``: an ``--over`` run's results written to a file as they arrive, keyed by the input's row.

JSON lines (``.jsonl``) and CSV (``.csv``) get each row appended the moment it is answered, so a crash or
a kill loses nothing that was paid for; Parquet (``.parquet``) is written a row group at a time into a new
file beside it (a Parquet file cannot grow), the rows it already held for other labels copied after them,
and the new file replaces the old one when the run ends. Nested answers are JSON text in Parquet and CSV. Each row carries ``_row`` (its label in
the input) and the same columns as the ``-o`` frame. A re-run appends only rows the file does not hold
answered already; for a row written twice, the last line is its latest answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import OptionError

__all__ = ["KINDS", "ResultsFile"]

KINDS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
ROW = "_row"


class ResultsFile:
    """The file ``--out`` names: what it holds already, and the writing of new rows."""

    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser()
        kind = KINDS.get(self.path.suffix.lower())
        if kind is None:
            raise OptionError(f"--out {path}: write .jsonl, .csv or .parquet")
        if not self.path.parent.is_dir():
            raise OptionError(f"--out {path}: no folder {self.path.parent}")
        self.kind = kind
        self.answered = self._answered()
        """Labels (as text) of the rows the file holds with ``_status`` ok."""
        self.written: set[str] = set()
        """Labels written by this run (a failed row once, however often it is offered)."""
        self._writer: Any = None
        self._partial = self.path.with_name(f".{self.path.name}.partial")

    def _answered(self) -> set[str]:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return set()
        frame = self._read()
        ok = frame[frame["_status"].astype("string") == "ok"] if "_status" in frame.columns else frame.iloc[0:0]
        return {str(label) for label in ok[ROW]} if ROW in ok.columns else set()

    def _read(self) -> Any:
        import pandas as pd

        if self.kind == "jsonl":
            return pd.read_json(self.path, lines=True, dtype=False)
        if self.kind == "csv":
            return pd.read_csv(self.path, dtype={ROW: "string"})
        return pd.read_parquet(self.path)

    def append(self, rows: Any) -> None:
        """Write the answered rows of a frame the file does not hold yet (JSON lines and CSV, at once)."""
        if self.kind == "parquet":
            return
        fresh = self._fresh(rows)
        if fresh.empty:
            return
        if self.kind == "jsonl":
            with self.path.open("a", encoding="utf-8") as out:
                for record in fresh.to_dict(orient="records"):
                    out.write(json.dumps(record, default=_plain, ensure_ascii=False) + "\n")
        else:
            header = not self.path.exists() or self.path.stat().st_size == 0
            fresh.to_csv(self.path, mode="a", header=header, index=False)
        self.answered |= {str(label) for label in fresh.loc[fresh["_status"] == "ok", ROW]}
        self.written |= set(fresh[ROW])

    def finish(self, frame: Any) -> int:
        """At the run's end: every row of ``frame`` the file lacks; Parquet written whole. The rows this run
        wrote in all."""
        if self.kind != "parquet":
            self.append(frame)
            return len(self.written)
        self.write(frame)
        return self.close()

    def write(self, frame: Any) -> None:
        """A chunk of the result (a run's rows in order, a chunk at a time); :meth:`close` ends the file."""
        if self.kind != "parquet":
            self.append(frame)
            return
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        fresh = _flat(self._fresh(frame))
        if fresh.empty:
            return
        table = pa.Table.from_pandas(fresh, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._partial, table.schema)
        elif table.schema != self._writer.schema:
            table = table.cast(self._writer.schema)
        self._writer.write_table(table)
        self.written |= set(fresh[ROW])

    def close(self) -> int:
        """Parquet: the rows the old file held for other labels copied after the new ones, then the new file
        in its place. The rows this run wrote."""
        if self.kind != "parquet" or self._writer is None:
            return len(self.written)
        import pyarrow.parquet as pq

        if self.path.exists():
            old = pq.ParquetFile(self.path)
            for batch in old.iter_batches(batch_size=65_536):
                keep = batch.to_pandas()
                keep = keep[~keep[ROW].astype(str).isin(self.written)]
                if not keep.empty:
                    import pyarrow as pa

                    self._writer.write_table(pa.Table.from_pandas(_flat(keep), preserve_index=False).cast(self._writer.schema))
        self._writer.close()
        self._writer = None
        self._partial.replace(self.path)
        return len(self.written)

    def _fresh(self, frame: Any) -> Any:
        import numpy as np

        with_row = frame.reset_index(drop=False).rename(columns={frame.index.name or "index": ROW})
        with_row[ROW] = with_row[ROW].astype(str)
        done = with_row["_status"].astype("string") != "not run"  # a row not run has nothing to keep
        # membership in Python sets, chunk by chunk (pandas' isin would copy the whole set for every chunk)
        answered, written = self.answered, self.written
        new = [label not in answered and label not in written for label in with_row[ROW]]
        return with_row[done.to_numpy(dtype=bool, na_value=False) & np.array(new, dtype=bool)]


def _flat(frame: Any) -> Any:
    """Nested answers (objects and lists) as JSON text, so every chunk of a file has the same columns."""
    frame = frame.copy()
    for name in frame.columns:
        if str(frame[name].dtype) == "object":
            frame[name] = [None if v is None else v if isinstance(v, str) else json.dumps(v, default=_plain, ensure_ascii=False)
                           for v in frame[name]]  # fmt: skip
            frame[name] = frame[name].astype("string")
    return frame


def _plain(value: Any) -> Any:
    """What JSON cannot hold as it is: missing values as null, the rest as text."""
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
