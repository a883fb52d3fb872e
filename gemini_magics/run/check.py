"""``--check LABELS``: an ``--over`` run's answers scored against labels the user already has.

For each schema field a label column names (a column of the same name; a lone label Series scores the
schema's only field, or the ``text`` answer), the accuracy over the rows that have both a label and an
answer; for fields with a fixed set of values (``Literal`` / enum), a confusion table; and the rows
where any scored field disagrees, labels and answers side by side. Values compare as the schema types
them, text without case or surrounding spaces. Pure: frames in, a report out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import OptionError

__all__ = ["CheckReport", "check_answers", "normal"]


@dataclass
class CheckReport:
    """What ``--check`` found: ``accuracy`` per field, ``confusion`` tables, the ``disagreements``."""

    accuracy: dict[str, float]
    scored: dict[str, int]
    """Rows scored per field (both a label and an answer)."""
    confusion: dict[str, Any] = field(default_factory=dict)
    disagreements: Any = None

    def line(self) -> str:
        parts = [f"{name} {self.accuracy[name]:.0%} of {self.scored[name]}" for name in self.accuracy]
        disagreeing = 0 if self.disagreements is None else len(self.disagreements)
        return f"check: {', '.join(parts)} · {disagreeing} {'row disagrees' if disagreeing == 1 else 'rows disagree'}"


def check_answers(frame: Any, labels: Any, fields: list[str], kinds: Mapping[str, Any]) -> CheckReport:
    """Score ``frame``'s answer ``fields`` against ``labels`` (a DataFrame or Series) row by row."""
    import pandas as pd

    if isinstance(labels, pd.Series):
        target = labels.name if labels.name in fields else (fields[0] if len(fields) == 1 else None)
        if target is None:
            raise OptionError(f"--check: a Series of labels needs a name among {', '.join(fields)}")
        labels = labels.rename(target).to_frame()
    if not isinstance(labels, pd.DataFrame):
        raise OptionError(f"--check: labels must be a DataFrame or Series, not {type(labels).__name__}")
    scored = [name for name in fields if name in labels.columns]
    if not scored:
        raise OptionError(f"--check: no label column is named like an answer field ({', '.join(fields)})")
    labels = labels.reindex(frame.index)
    report = CheckReport({}, {})
    wrong = pd.Series(False, index=frame.index)
    for name in scored:
        have = labels[name].notna() & frame[name].notna()
        same = _normal(frame[name]) == _normal(labels[name])
        report.scored[name] = int(have.sum())
        report.accuracy[name] = float((same & have).sum() / have.sum()) if have.any() else float("nan")
        wrong |= have & ~same
        if kinds.get(name) == "enum":
            report.confusion[name] = pd.crosstab(labels.loc[have, name].rename(f"{name} (label)"),
                                                 frame.loc[have, name].astype("object").rename(f"{name} (answer)"))  # fmt: skip
    side_by_side = {f"{name} (label)": labels[name] for name in scored} | {name: frame[name] for name in scored}
    report.disagreements = pd.DataFrame(side_by_side)[wrong]
    return report


def normal(value: Any) -> Any:
    """A value as answers are compared: text without case or surrounding spaces, anything else as it is."""
    return value.strip().casefold() if isinstance(value, str) else value


def _normal(values: Any) -> Any:
    import pandas as pd

    return pd.Series(values.astype("object").map(normal), index=values.index).astype("object")
