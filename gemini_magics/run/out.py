"""``--out PATH``: an ``--over`` run's results written to a file as they arrive, keyed by the input's row.

JSON lines (``.jsonl``) and CSV (``.csv``) get each row appended the moment it is answered, so a crash or
a kill loses nothing that was paid for; Parquet (``.parquet``) is written whole when the run ends (a
Parquet file cannot grow), merged with the rows it already held. Each row carries ``_row`` (its label in
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
        import pandas as pd

        if self.kind != "parquet":
            self.append(frame)
            return len(self.written)
        fresh = self._fresh(frame)
        held = self._read() if self.path.exists() else None
        if held is not None:
            held = held[~held[ROW].astype(str).isin(set(fresh[ROW].astype(str)))]
        merged = fresh if held is None else pd.concat([held, fresh], ignore_index=True)
        merged.to_parquet(self.path, index=False)
        return len(fresh)

    def _fresh(self, frame: Any) -> Any:
        with_row = frame.reset_index(drop=False).rename(columns={frame.index.name or "index": ROW})
        with_row[ROW] = with_row[ROW].astype(str)
        done = with_row["_status"].astype("string") != "not run"  # a row not run has nothing to keep
        return with_row[done & ~with_row[ROW].isin(self.answered | self.written)]


def _plain(value: Any) -> Any:
    """What JSON cannot hold as it is: missing values as null, the rest as text."""
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
