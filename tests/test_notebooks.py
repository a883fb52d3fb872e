"""Notebooks executed headless (nbclient): what stays in the saved file, and that no key leaks into it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from gemini_magics.local import start_server
from gemini_magics.render.actions import MIME_TYPE as ACTIONS

ROOT = Path(__file__).resolve().parents[1]
PLAIN = {"text/plain", "text/markdown", "image/png", "image/jpeg", "application/json"}
ACTION_KEYS = {"stem", "images", "copy"}  # what the JupyterLab extension's entry holds: never content


def execute(notebook: nbformat.NotebookNode, env: dict[str, str], cwd: Path) -> nbformat.NotebookNode:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        NotebookClient(
            notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
        ).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return notebook


def run_cells(cells: list[str], cwd: Path, env: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """A notebook of these code cells, executed in a real kernel on the scripted engine."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    return execute(notebook, env or {"GEMINI_MAGICS_ENGINE": "scripted"}, cwd)


def test_quickstart_saved_outputs_are_plain_and_free_of_live_views(tmp_path: Path) -> None:
    notebook = execute(nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4),
                       {"GEMINI_MAGICS_ENGINE": "scripted"}, tmp_path)  # fmt: skip
    interact_cells = [
        c for c in notebook.cells if c.cell_type == "code" and c.source.startswith("%%interact")
    ]
    assert len(interact_cells) >= 10
    for cell in interact_cells:
        if "--background" in cell.source:
            # its one display was kept up to date: the saved file shows how the run ended
            (shown,) = cell.outputs
            assert shown.output_type == "display_data" and "**completed**; bound to `report`" in shown.data["text/markdown"]
            continue
        # the live view leaves nothing behind: the result is the cell's only output
        (result,) = [o for o in cell.outputs if o.output_type != "stream"]
        # a chat turn is shown under a display id (a later rewind marks it dropped in place); a dry run is the value
        assert result.output_type == ("execute_result" if "--dry-run" in cell.source else "display_data"), cell.source
        assert set(result.data) - {ACTIONS} <= PLAIN and set(result.data) & {"text/markdown", "application/json"}
        if result.output_type == "display_data":  # an answer's Copy and Save (JupyterLab draws them; others ignore it)
            assert set(result.data[ACTIONS]) <= ACTION_KEYS and result.metadata["gemini_magics"]["result"]
    image_cell = next(c for c in interact_cells if "--image" in c.source)
    shown = image_cell.outputs[-1].data  # generated images are JPEG, as the API sends them; stored once
    (embedded,) = re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", shown["text/markdown"])
    assert json.dumps(dict(shown)).count(embedded) == 1
    schema_cell = next(c for c in interact_cells if "--schema" in c.source)
    assert schema_cell.outputs[-1].data["application/json"] == {
        "person": "Alice",
        "city": "Paris",
        "year": 2019,
    }
    # the metadata names what really answered, and what was asked for
    provenance = schema_cell.outputs[-1].metadata["gemini_magics"]
    assert (provenance["model"], provenance["requested_model"]) == ("local:scripted", "gemini-3-flash-preview")


SECRET = "AIzaSyNOTEBOOK-secret-0123456789abcdef"


@pytest.mark.parametrize("failing", [False, True])
def test_no_key_in_a_saved_notebook(tmp_path: Path, failing: bool) -> None:
    cells = [
        "%load_ext gemini_magics",
        "%%interact -o r --thinking low\nHi, my name is Kim.",
        "%interact config",
        "%interact history",
        "%%interact --dry-run\nshow me",
        "r.interaction",
    ]
    if failing:
        cells.insert(1, '%config InteractMagics.headers = {"X-Scripted-Fail": "401:1"}')
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    with start_server(engine="scripted", api_key=SECRET) as server:
        env = {
            "GEMINI_API_KEY": SECRET,
            "GEMINI_BASE_URL": server.base_url,
            "GEMINI_MAGICS_ENGINE": "scripted",
        }
        try:
            execute(notebook, env, tmp_path)
        except Exception as exc:  # the failing variant stops at its error, like Run All
            assert failing and SECRET not in str(exc)
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)
    text = path.read_text()
    assert SECRET not in text
    assert "set, from GEMINI_API_KEY" in text or failing


def test_kernel_cells_expand_line_variables_and_honour_the_semicolon(tmp_path: Path) -> None:
    cells = [
        "%load_ext gemini_magics",
        'chosen = "gemini-from-a-variable"\nline = "not this one"',
        "%%interact -m {chosen} --dry-run\nhi",
        "%%interact -o quiet\nHello there;",
        "quiet.text[:16]",
        "get_ipython().input_transformers_post[-1].__name__",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    execute(notebook, {"GEMINI_MAGICS_ENGINE": "scripted"}, tmp_path)
    dry_run = notebook.cells[2].outputs[-1].data["application/json"]
    assert dry_run["model"] == "gemini-from-a-variable"
    assert [o for o in notebook.cells[3].outputs if o.output_type in ("execute_result", "display_data")] == []
    assert notebook.cells[4].outputs[0].data["text/plain"] == "'**Scripted reply'"
    assert notebook.cells[5].outputs[0].data["text/plain"] == "'await_interact_cells'"


def _checked_outputs(notebook: nbformat.NotebookNode) -> list[str]:
    """The text of the cells nbval compares (tagged ``nbval-check-output``), in order."""
    texts = []
    for cell in notebook.cells:
        if cell.cell_type == "code" and "nbval-check-output" in cell.get("metadata", {}).get("tags", []):
            texts.append("".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs))
    return texts


def test_the_extraction_notebook_holds_on_a_fresh_and_a_warm_row_cache(tmp_path: Path) -> None:
    saved = nbformat.read(ROOT / "notebooks" / "extraction.ipynb", as_version=4)
    env = {"GEMINI_MAGICS_ENGINE": "scripted", "GEMINI_MAGICS_CACHE_DIR": str(tmp_path / "cache")}
    fresh = execute(nbformat.read(ROOT / "notebooks" / "extraction.ipynb", as_version=4), env, tmp_path)
    warm = execute(nbformat.read(ROOT / "notebooks" / "extraction.ipynb", as_version=4), env, tmp_path)  # same cache
    assert _checked_outputs(fresh) == _checked_outputs(saved) == _checked_outputs(warm)
    assert len(_checked_outputs(saved)) >= 8


@pytest.mark.parametrize("cell", [
    "%%interact --over rows -o out\nRate: {{row}}",
    "%%interact --agent deep-research-pro-preview-12-2025 -o report\nTea?",
])  # fmt: skip
def test_the_backend_notice_comes_first_in_every_kind_of_cell(tmp_path: Path, cell: str) -> None:
    notebook = run_cells(["%load_ext gemini_magics", "rows = ['good', 'bad']", cell], tmp_path)
    outputs = notebook.cells[2].outputs
    said = [n for n, o in enumerate(outputs) if o.output_type == "stream" and "gemini-magics: " in o.text]
    shown = [n for n, o in enumerate(outputs) if o.output_type in ("display_data", "execute_result")]
    assert said and shown and said[0] < shown[0], outputs
