"""What the notebook makers share: writing a notebook of cells with the project's kernel spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_notebook

CHECK = {"tags": ["nbval-check-output"]}
"""Cell metadata: nbval compares this cell's outputs with the stored ones."""


def write_notebook(name: str, cells: list[Any]) -> None:
    notebook = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })  # fmt: skip
    Path(__file__).resolve().parents[1].joinpath("notebooks", name).write_text(nbformat.writes(notebook))
    print(f"notebooks/{name}")
