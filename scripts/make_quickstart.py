"""Writes notebooks/quickstart.ipynb (sources and tags); outputs come from executing it."""

from __future__ import annotations

from _notebooks import CHECK, write_notebook
from nbformat.v4 import new_code_cell, new_markdown_cell

cells = [
    new_markdown_cell(
        "# gemini-magics quickstart\n\n"
        "`%%interact` sends a cell to a Gemini model through the **Interactions API** and shows the answer as it "
        "streams. With no `GEMINI_API_KEY` set it uses an **embedded local server** (a small real model, SmolLM2, "
        "or a deterministic scripted engine), so this notebook runs anywhere, offline.\n\n"
        "Load the extension (it is fast, silent and does no network I/O):"
    ),
    new_code_cell("%load_ext gemini_magics"),
    new_markdown_cell(
        "## Talk to a model\n\nThe cell is the prompt. Cells continue a conversation *chain* kept in this kernel:"
    ),
    new_code_cell("%%interact\nHi, my name is Phil.", metadata=CHECK),
    new_code_cell("%%interact\nWhat is my name?", metadata=CHECK),
    new_markdown_cell(
        "Re-running a cell *replaces* its own turn instead of stacking another one: the chain rewinds to it, and "
        "the result line says how many later turns were dropped (`%interact history --all` lists them, "
        "`%interact restore N` brings them back). `--chain NAME` keeps separate conversations; `--new` starts one afresh."
    ),
    new_code_cell(
        "%%interact --chain scratch --new\nAnswer with a short list of three colours.", metadata=CHECK
    ),
    new_markdown_cell(
        "## Put your data in the prompt\n\n"
        "`{{name}}` places a Python object at that spot: text and numbers inline, dicts as JSON, DataFrames as a "
        "compact table (shape, dtypes, a sample, within a budget), images as images. Other braces are left alone, "
        "so JSON and code in prompts are safe; `\\{{` is a literal."
    ),
    new_code_cell(
        "import pandas as pd\n\n"
        "sales = pd.DataFrame({\n"
        '    "region": ["north", "south", "east", "west"] * 25,\n'
        '    "units": range(100),\n'
        '    "price": [9.5, 12.0, 7.25, 10.0] * 25,\n'
        "})\n"
        'settings = {"currency": "EUR", "year": 2024}'
    ),
    new_code_cell(
        '%%interact --chain data -o summary\nSummarise this table in a table: {{sales}}\nSettings: {{settings["currency"]}}. '
        'Keep this JSON as is: {"format": "markdown"}',
        metadata=CHECK,
    ),
    new_code_cell("summary.text[:60]", metadata=CHECK),
    new_markdown_cell(
        "`--dry-run` shows exactly what would be sent (images and files summarised), and sends nothing:"
    ),
    new_code_cell("%%interact --dry-run --temperature 0.2\nWhat stands out in {{sales}}?"),
    new_markdown_cell(
        "## Structured output\n\n`--schema NAME` takes a pydantic model (or a JSON-schema dict) from the kernel; "
        "the answer is validated into `.data`."
    ),
    new_code_cell(
        "from pydantic import BaseModel\n\n\nclass Move(BaseModel):\n    person: str\n    city: str\n    year: int"
    ),
    new_code_cell(
        "%%interact --schema Move -o move --temperature 0\nAlice moved to Paris in 2019.", metadata=CHECK
    ),
    new_code_cell("move.data", metadata=CHECK),
    new_markdown_cell(
        "## Thinking\n\n`--thinking LEVEL` asks the model to think first; its summary is shown folded."
    ),
    new_code_cell(
        "%%interact --thinking low --chain scratch\nHow many weekdays are in a week?", metadata=CHECK
    ),
    new_markdown_cell(
        "## Images\n\n`--image` asks for image output; the images are bound as PIL images. With a key, the API's "
        "image model paints them. The embedded local server cannot paint (SmolLM2 is a small *text* model, good at "
        "short answers and schema-checked extraction): it draws a labelled stand-in, and the result says so."
    ),
    new_code_cell("%%interact --image -o picture --chain pictures --new\nA lighthouse on a cliff at dawn"),
    new_code_cell("picture.images[0].size"),
    new_markdown_cell(
        "## Background work\n\n`--background` returns at once and keeps the kernel free; a status line with a "
        "Cancel button follows the interaction, and the result is bound to `-o NAME` when it is done. "
        "`%interact wait` waits for it."
    ),
    new_code_cell(
        "%%interact --background -o report --chain reports\nWrite a short report on the history of tea."
    ),
    new_code_cell("%interact wait", metadata=CHECK),
    new_code_cell("report.text[:40]", metadata=CHECK),
    new_markdown_cell(
        "## Keeping history in the kernel\n\n`--no-store` keeps the conversation client-side: nothing is stored on "
        "the server and the whole history is sent each time."
    ),
    new_code_cell("%%interact --no-store --chain private\nHi, my name is Ada.", metadata=CHECK),
    new_code_cell("%%interact --no-store --chain private\nWhat is my name?", metadata=CHECK),
    new_markdown_cell(
        "## Managing state\n\n`%interact` (the line magic) has subcommands; each has `--help`."
    ),
    new_code_cell("%interact chains"),
    new_code_cell("%interact history --chain data"),
    new_code_cell("%interact usage"),
    new_code_cell("%interact reset --chain scratch"),
    new_markdown_cell(
        "Mistakes are one short line, and stop *Run All* there. Try `%%interact --schema Nope` or "
        "`{{undefined}}` in a prompt. See `%%interact?` for every option, and `%interact config` for the effective "
        "settings (the API key is only ever shown as *set* or *not set*)."
    ),
]
write_notebook("quickstart.ipynb", cells)
