"""Writes notebooks/extraction.ipynb (sources and tags); outputs come from executing it (scripts/refresh_notebooks.sh)."""

from __future__ import annotations

from _notebooks import CHECK, write_notebook
from nbformat.v4 import new_code_cell, new_markdown_cell

cells = [
    new_markdown_cell(
        "# Extracting data from every row\n\n"
        "A column of free text and a schema to pull out of each row: `%%interact --over NAME` runs the cell once "
        "per row, concurrently, and gives back a DataFrame on the same index. One bad row never stops the "
        "others, every answered row is cached on disk (a re-run after Stop, a crash or a restart sends only "
        "what is missing), and `--batch` hands the rows to Gemini's Batch API when they outgrow live calls. "
        "This notebook runs offline on the embedded server's scripted engine."
    ),
    new_code_cell("%load_ext gemini_magics"),
    new_markdown_cell("## Some messy reviews\n\nTypos, shouting, missing ratings, a rating out of range, two languages, a duplicate."),
    new_code_cell(
        "import pandas as pd\n\n"
        "reviews = pd.DataFrame({\n"
        '    "text": [\n'
        '        "5 stars!!! best kettle I ever owned", "Kettle leaks after 2 weeks. 1 star, avoid",\n'
        '        "toaster ok-ish, 3 stars, crumbs everywhere", "4 stars. the blender is LOUD but strong",\n'
        '        "12 stars if I could!!! love this toaster", "2 stars - kettle lid broke",\n'
        '        "Mixer works. 4 stars", "grille-pain parfait, 5 étoiles", "3 stars, kettle is fine i guess",\n'
        '        "1 star. blender died on day one", "5 stars!!! best kettle I ever owned",\n'
        '        "4 stars: quiet toaster, even browning",\n'
        "    ],\n"
        '    "customer id": [101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112],\n'
        '}, index=pd.Index([f"rev-{n:03}" for n in range(1, 13)], name="review"))\n'
        "reviews"
    ),
    new_markdown_cell(
        "## One schema\n\n"
        "A pydantic model: its JSON schema is sent, and every answer is validated with it, custom validators "
        "included (a rating must be 1 to 5 stars)."
    ),
    new_code_cell(
        "from pydantic import BaseModel, field_validator\n\n\n"
        "class Review(BaseModel):\n"
        "    product: str\n"
        "    rating: int\n\n"
        '    @field_validator("rating")\n'
        "    @classmethod\n"
        "    def stars(cls, value: int) -> int:\n"
        "        if not 1 <= value <= 5:\n"
        '            raise ValueError("a rating is 1 to 5 stars")\n'
        "        return value"
    ),
    new_markdown_cell(
        "## Look before you pay\n\n"
        "`--dry-run` shows the first row's request, how many requests the run makes, about how many tokens, "
        "and what the rows still to send would cost on each tier (standard, flex, batch) from the price "
        "table shipped with the package (dated; `%config InteractMagics.prices` overrides it), sending "
        "nothing. `{{row.text}}` is the current row's column "
        '(`{{row["customer id"]}}` for names with spaces, `{{row}}` for the whole row).'
    ),
    new_code_cell(
        "%%interact --over reviews --schema Review --dry-run -o plan\n"
        "Extract the product and its star rating from this review: {{row.text}}"
    ),
    new_code_cell(  # what the plan says whatever the cache holds (it says how many rows it answers)
        'plan.requests, plan.estimated_tokens, plan.request["response_format"]["schema"]["required"]',
        metadata=CHECK,
    ),
    new_code_cell(  # the cost line's shape, whatever the cache holds
        'cost = plan.notes[-1]\n'
        '[tier in cost for tier in (" standard", " flex", " batch (the price table of")]',
        metadata=CHECK,
    ),
    new_markdown_cell("`--limit K` runs the first rows only: the usual way to try a prompt."),
    new_code_cell(
        "%%interact --over reviews --schema Review --limit 3 -o sample\n"
        "Extract the product and its star rating from this review: {{row.text}}"
    ),
    new_code_cell('sample[["product", "rating", "_status"]]', metadata=CHECK),
    new_markdown_cell(
        "## All rows\n\n"
        "Rows run concurrently (`--concurrency N`, default `%config InteractMagics.concurrency`: 8, or 1 on the embedded SmolLM2 engine, which answers one request at a time); on 429 or "
        "503 the run slows down and honours `Retry-After`, then speeds up again. The progress bar has a "
        "**Stop** button: finished rows are kept in the cache. The three rows tried above come from the "
        "cache, and the duplicate review is sent once."
    ),
    new_code_cell(
        "%%interact --over reviews --schema Review -o extracted\n"
        "Extract the product and its star rating from this review: {{row.text}}"
    ),
    new_code_cell('extracted[["product", "rating", "_status"]]', metadata=CHECK),
    new_markdown_cell(
        "## The failures\n\n"
        "A failed row has `_status == \"error\"` and a one-line `_error` (validation, server error after "
        "retries, refusal, cut). Fix the prompt or the schema and re-run: only the rows without a good answer "
        "are sent again."
    ),
    new_code_cell('extracted.loc[extracted["_status"] == "error", ["_error"]]', metadata=CHECK),
    new_code_cell('print(f"{extracted._input_tokens.sum()} input tokens, {extracted._output_tokens.sum()} output tokens")', metadata=CHECK),
    new_markdown_cell(
        "`%interact cache` shows where the cache lives and how big it is; `%interact cache clear` empties it; "
        "`--no-cache` bypasses it for one run; `--budget 50k` (tokens) or `--budget $5` (dollars, at the "
        "price table's rates) stops a run cleanly before it would pass the cap (what is in flight counts), and "
        "the summary line says what the run spent. A row whose referenced value is missing (`NaN`, `None`, empty) "
        "is flagged `skipped`, not sent as the text \"nan\" (`--keep-missing` sends it), and a failed row "
        "keeps what the model said in `_raw`."
    ),
    new_markdown_cell(
        "## The exploratory loop\n\n"
        "Iterate on a prompt on a few rows before paying for all of them: `--sample K` draws K rows at random, "
        "the same ones every run (so a re-run comes from the cache; `--sample-seed N` draws others)."
    ),
    new_code_cell(
        "%%interact --over reviews --schema Review --sample 4 -o tried\n"
        "Extract the product and its star rating from this review: {{row.text}}"
    ),
    new_code_cell('list(tried.index)', metadata=CHECK),
    new_markdown_cell(
        "Labels you already have score the answers: `--check LABELS` (a DataFrame or Series on the same index, "
        "columns named like the schema's fields, or a column of the `--over` frame) gives the accuracy per "
        "field, a confusion table for `Literal` fields, and the rows that disagree."
    ),
    new_code_cell(
        'truth = pd.DataFrame({"rating": [5, 1, 3, 4, 5, 2, 4, 5, 3, 1, 5, 4]}, index=reviews.index)\n'
        "truth"
    ),
    new_code_cell(
        "%%interact --over reviews --schema Review --check truth -o checked\n"
        "Extract the product and its star rating from this review: {{row.text}}"
    ),
    new_code_cell('get_ipython().run_line_magic("interact", "last").check.disagreements', metadata=CHECK),
    new_markdown_cell(
        "Two models on the same rows, side by side (`field@model`), with where they agree per field: "
        "`-m a,b`. (Offline, both are the scripted engine, so they agree.)"
    ),
    new_code_cell(
        "%%interact --over reviews --schema Review -m gemini-3-flash-preview,gemini-3-pro-preview --limit 3 -o compared\n"
        "Extract the product and its star rating from this review: {{row.text}}"
    ),
    new_code_cell('list(compared.columns[:4])', metadata=CHECK),
    new_markdown_cell(
        "## Rows from files, results to files\n\n"
        "`--over` also takes a polars DataFrame, a pyarrow Table, or Parquet, CSV and JSON-lines files (a path "
        "or a glob, read a chunk at a time, never whole); `--out PATH` writes every row to `.jsonl` or `.csv` the "
        "moment it is answered (`.parquet` a row group at a time), keyed by `_row`, and a re-run adds only what "
        "the file lacks. Past `%config InteractMagics.max_frame_rows` rows, `-o` is a handle on the file "
        "(`.load()`, `.head(n)`) rather than a DataFrame."
    ),
    new_code_cell(
        "import tempfile, pathlib\n"
        "folder = pathlib.Path(tempfile.mkdtemp())\n"
        'reviews.reset_index().to_csv(folder / "reviews.csv", index=False)\n'
        "csv_path = folder / \"reviews.csv\""
    ),
    new_code_cell(
        '%%interact --over "{csv_path}" --schema Review --out {folder}/results.jsonl -o from_file\n'
        "Extract the product and its star rating from this review: {{row.text}}"
    ),
    new_code_cell('pd.read_json(folder / "results.jsonl", lines=True)[["_row", "product", "rating", "_status"]].shape', metadata=CHECK),
    new_markdown_cell(
        "## Beyond one kernel: `--batch`\n\n"
        "For millions of rows, or half the price, `--batch` hands the rows to the Gemini Batch API and returns "
        "at once. The requests are written a chunk at a time to JSONL files on disk (never one payload in "
        "memory), split into jobs of at most `%config InteractMagics.batch_job_rows` rows (and 2 GB), uploaded "
        "resumably and followed together; each job's results are read as a stream into the row cache (and "
        "`--out`), matched to rows by key, and `-o` is bound when the last job ends. Jobs are journaled: after a "
        "kernel restart, re-running the cell follows the jobs still running instead of sending their rows again; "
        "`%interact batch list` shows each run's jobs and `%interact batch load NAME -o OUT` gets a run's "
        "DataFrame in a new kernel. (`--no-cache` here, since every row is cached already.)"
    ),
    new_code_cell(
        "%%interact --over reviews --schema Review --batch --no-cache -o batched\n"
        "Extract the product and its star rating from this review: {{row.text}}"
    ),
    new_code_cell("%interact wait"),
    new_code_cell('batched[["product", "rating", "_status"]].equals(extracted[["product", "rating", "_status"]])', metadata=CHECK),
]
write_notebook("extraction.ipynb", cells)
