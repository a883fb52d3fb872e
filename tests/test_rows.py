"""--over: one stateless interaction per row, from a real IPython shell over loopback HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from typing import Any

import pytest

from conftest import Shell, requests_to

pd = pytest.importorskip("pandas")

SETUP = '''
import pandas as pd
from pydantic import BaseModel, field_validator

class Review(BaseModel):
    product: str
    rating: int

    @field_validator("rating")
    @classmethod
    def stars(cls, value: int) -> int:
        if not 1 <= value <= 5:
            raise ValueError("a rating is 1 to 5 stars")
        return value

texts = [f"{i % 5 + 1} stars for the kettle, order {1000 + i}." for i in range(40)]
texts[7] = "9 stars for the kettle, order 1007."               # the scripted engine echoes 9: fails validation
texts[21] = "[fail 500] 2 stars for the kettle, order 1021."   # the server fails on this one every time
reviews = pd.DataFrame({"review text": texts, "shop": ["north", "south"] * 20}, index=[f"R{i:02}" for i in range(40)])
'''
CELL = '%%interact --over reviews --schema Review -o extracted\nExtract the product and rating: {{row["review text"]}} (shop {{row.shop}})'


def creates(server: Any) -> int:
    return int(server.api.creates)


@pytest.fixture
def rows_shell(shell: Shell) -> Shell:
    shell.run(SETUP)
    return shell


def test_forty_rows_give_the_schema_columns_on_the_input_index(rows_shell: Shell, server: Any) -> None:
    before = creates(server)
    result = rows_shell.run(CELL)
    frame = rows_shell.ip.user_ns["extracted"]
    assert list(frame.index) == [f"R{i:02}" for i in range(40)] and creates(server) - before == 40 + 2  # 2 retries of R21
    assert list(frame.columns) == ["product", "rating", "_status", "_error", "_raw", "_id", "_input_tokens", "_output_tokens"]
    assert str(frame["rating"].dtype) == "Int64" and str(frame["product"].dtype) == "string"
    assert frame.loc["R03", "rating"] == 4 and frame.loc["R03", "_status"] == "ok" and frame.loc["R03", "_id"].startswith("v1_")
    assert frame.loc["R07", "_status"] == "error" and "a rating is 1 to 5 stars" in frame.loc["R07", "_error"]
    assert json.loads(frame.loc["R07", "_raw"])["rating"] == 9  # what the model said, out of range
    assert pd.isna(frame.loc["R03", "_raw"]) and pd.isna(frame.loc["R03", "_error"])  # <NA>, not None or NaN
    assert frame.loc["R21", "_status"] == "error" and "500" in frame.loc["R21", "_error"] and "after 3 attempts" in frame.loc["R21", "_error"]
    assert pd.isna(frame.loc["R07", "rating"]) and (frame["_status"] == "ok").sum() == 38
    assert result.summary.startswith("40 rows: 38 ok, 2 failed (1 server, 1 validation)")
    sent = [r["json"] for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions") and "input" in (r["json"] or {})][-1]
    assert sent["store"] is False and "previous_interaction_id" not in sent and sent["response_format"]["schema"]["required"] == ["product", "rating"]
    assert "shop north" in str(sent["input"]) or "shop south" in str(sent["input"])


def test_row_references_and_lists(shell: Shell, server: Any) -> None:
    shell.run('items = [{"name": "tea", "kind": "drink"}, "just a string", "just a string"]')
    shell.run('orders = [{"items": "3 kettles", "values": "12 EUR"}]')
    shell.run("%%interact --over orders\nSay {{row.items}} for {{row.values}}")
    assert requests_to(server, "/interactions")[-1]["json"]["input"] == "Say 3 kettles for 12 EUR"  # columns, not dict methods
    before = creates(server)
    result = shell.run("%%interact --over items -o said\nSay {{row}}")
    frame = shell.ip.user_ns["said"]
    assert list(frame.index) == [0, 1, 2] and list(frame["_status"]) == ["ok", "ok", "ok"]
    assert creates(server) - before == 2 and frame.loc[1, "text"] == frame.loc[2, "text"]  # identical rows: one request
    sent = [r["json"]["input"] for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions") and "input" in (r["json"] or {})][-2:]
    assert sorted(sent) == sorted(['Say {"name": "tea", "kind": "drink"}', 'Say {"text": "just a string"}'])
    assert "text" in frame.columns and result.summary.startswith("3 rows: 3 ok")


def test_limit_and_dry_run_send_only_what_they_say(rows_shell: Shell, server: Any) -> None:
    before = creates(server)
    dry = rows_shell.run(CELL.replace("-o extracted", "-o extracted --dry-run"))
    assert creates(server) == before and rows_shell.ip.user_ns["extracted"] is dry  # bound like a single cell's
    text = repr(dry)
    assert "dry run, nothing sent" in text and "R00" in text and "40 requests (one per row); 0 answered by the cache, 40 would be sent" in text
    assert dry.estimated_tokens > 40 * 10
    rows_shell.run(CELL.replace("-o extracted", "-o extracted --limit 5"))
    assert creates(server) - before == 5 and len(rows_shell.ip.user_ns["extracted"]) == 5


def test_a_429_storm_lowers_the_concurrency_and_every_row_completes(rows_shell: Shell, server: Any) -> None:
    storm = f"429:60:storm-{uuid.uuid4().hex}:once"  # 60 requests answered 429, then the storm is over
    rows_shell.ip.run_line_magic("config", f'InteractMagics.headers = {{"X-Scripted-Fail": "{storm}"}}')
    result = rows_shell.run(CELL.replace("-o extracted", "-o extracted --concurrency 16 --no-cache"))
    frame = rows_shell.ip.user_ns["extracted"]
    assert (frame["_status"] == "ok").sum() == 38 and result.stats.lowest < 16
    assert "concurrency 16 (lowered to" in result.summary


def test_answers_reach_the_row_cache_while_the_run_goes_on(shell: Shell, tmp_path: Any) -> None:
    # a few answers share a transaction, but none waits for the run's end: a kernel killed mid-run keeps them
    shell.ip.run_line_magic("config", f"InteractMagics.cache_dir = {str(tmp_path)!r}")
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "150", "X-Scripted-Deltas": "1"}')
    shell.run('items = [f"kept early {i}" for i in range(12)]')
    seen: list[int] = []
    finished = threading.Event()

    def watch() -> None:  # another connection, as a second kernel would read the file
        while not finished.is_set() and not seen:
            path = tmp_path / "rows.sqlite3"
            if path.exists():
                with sqlite3.connect(path) as db, contextlib.suppress(sqlite3.Error):
                    seen.extend(n for (n,) in db.execute("select count(*) from rows") if n)
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    shell.run("%%interact --over items -o said --concurrency 2\nSay {{row}}")
    finished.set()
    watcher.join()
    assert seen and 1 <= seen[0] < 12, seen  # on disk while rows were still in flight
    assert (shell.ip.user_ns["said"]["_status"] == "ok").all()


def test_stop_keeps_finished_rows_and_a_rerun_sends_only_the_rest(rows_shell: Shell, server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from gemini_magics.render import live
    from gemini_magics.render.progress import NullRowsProgress

    class StopAfter(NullRowsProgress):
        def __init__(self) -> None:
            self.updates = 0

        def update(self, stats: Any) -> None:
            self.updates += 1
            self.stopped = self.stopped or self.updates >= 12

    views: list[Any] = []  # the first run gets a progress view that presses Stop; later runs none
    monkeypatch.setattr(live.Views, "rows", lambda self, interactive: views.append(1) or (StopAfter() if len(views) == 1 else NullRowsProgress()))
    rows_shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "30"}')
    before = creates(server)
    error = rows_shell.fail(CELL.replace("-o extracted", "-o extracted --concurrency 4"))
    assert "stopped by you: the" in str(error) and "the partial frame is bound to 'extracted'" in str(error)
    assert rows_shell.ip.user_ns["extracted"] is rows_shell.magics.session.last_result.frame
    first_run = creates(server) - before
    partial = rows_shell.magics.session.last_result
    finished = partial.stats.done + partial.stats.failed
    assert 12 <= finished < 40 and (partial.frame["_status"] == "not run").sum() == 40 - finished
    rows_shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    time.sleep(0.5)  # requests in flight at Stop were abandoned, not recalled: let them land first
    middle = creates(server)
    rerun = rows_shell.run(CELL)
    # every row answered before Stop is cached, and so is an answer that was in flight when Stop came;
    # the re-run sends exactly the rest (R21, which fails every time, three times)
    assert rerun.stats.cached >= partial.stats.done and rerun.stats.cached <= first_run
    assert creates(server) - middle == 40 - rerun.stats.cached + 2
    assert first_run >= finished


def test_a_second_kernel_rerunning_the_cell_sends_nothing(rows_shell: Shell, server: Any, tmp_path: Any) -> None:
    rows_shell.run(CELL)
    before = creates(server)
    script = SETUP + textwrap.dedent(f'''
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.user_ns.update(globals())
        ip.run_line_magic("load_ext", "gemini_magics")
        result = ip.run_cell({CELL!r})
        frame = ip.user_ns["extracted"]
        print("STATUS", (frame["_status"] == "ok").sum(), result.result.stats.cached)
    ''')
    env = dict(os.environ, GEMINI_BASE_URL=server.base_url)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert "STATUS 38 38" in done.stdout, done.stderr[-2000:]
    assert creates(server) - before == 1 + 3  # only the failed rows are sent again (R07 once, R21 three times)


@pytest.mark.parametrize("concurrency", [2, 16])
def test_budget_holds_and_says_what_was_spent(rows_shell: Shell, concurrency: int) -> None:
    result = rows_shell.run(CELL.replace("-o extracted", f"-o extracted --budget 100 --concurrency {concurrency} --no-cache"))
    frame = rows_shell.ip.user_ns["extracted"]
    not_run = (frame["_status"] == "not run").sum()
    assert not_run > 0 and "not run (the --budget was reached)" in result.summary
    assert 0 < result.stats.tokens <= 100  # what is in flight counts: the budget is never passed
    assert f"{result.stats.tokens} of the 100-token budget" in result.summary


def test_a_dollar_budget_holds_at_the_configured_price(rows_shell: Shell) -> None:
    rows_shell.ip.run_line_magic("config", 'InteractMagics.prices = {"gemini-3-flash-preview": {"input": 200.0, "output": 400.0}}')
    result = rows_shell.run(CELL.replace("-o extracted", "-o extracted --budget $0.05 --concurrency 4 --no-cache"))
    assert 0 < result.stats.cost <= 0.05 and result.stats.not_run > 0  # in flight counts: never passed
    expected = (result.stats.input_tokens * 200 + result.stats.output_tokens * 400) / 1e6
    assert abs(result.stats.cost - expected) < 1e-9
    assert "of the $0.05 budget" in result.summary and "at standard prices had the API answered" in result.summary
    error = rows_shell.fail(CELL.replace("-o extracted", "-o extracted -m unknown-model --budget $1"))
    assert "no price is known for unknown-model" in str(error) and "\n" not in str(error)
    assert "--budget 5x" in str(rows_shell.fail(CELL.replace("-o extracted", "-o extracted --budget 5x")))


def test_the_dry_run_prices_every_tier(rows_shell: Shell) -> None:
    from gemini_magics.prices import PRICES_AS_OF

    dry = rows_shell.run(CELL.replace("-o extracted", "-o extracted --dry-run"))
    line = next(n for n in dry.notes if n.startswith("the 40 rows to send"))
    tokens_in = int(line.split("~")[1].split(" in")[0].replace(",", ""))
    tokens_out = int(line.split("+ ~")[1].split(" out")[0].replace(",", ""))
    standard = (tokens_in * 0.50 + tokens_out * 3.00) / 1e6  # gemini-3-flash-preview, standard
    assert f"${standard:.4f}".rstrip("0") + " standard" in line and " flex · " in line and " batch (" in line
    assert f"price table of {PRICES_AS_OF}" in line and "schema of" in line
    rows_shell.run(CELL.replace("-o extracted", "-o extracted --limit 5"))
    again = rows_shell.run(CELL.replace("-o extracted", "-o extracted --dry-run"))
    assert any(n.startswith("the 35 rows to send") for n in again.notes)  # cached rows cost nothing


def test_past_max_frame_rows_o_is_a_handle_on_the_out_file(rows_shell: Shell, tmp_path: Any) -> None:
    out = tmp_path / "out.jsonl"
    rows_shell.ip.run_line_magic("config", "InteractMagics.max_frame_rows = 5")
    rows_shell.run(CELL.replace("-o extracted", f"-o extracted --limit 8 --out {out}"))
    handle = rows_shell.ip.user_ns["extracted"]
    assert type(handle).__name__ == "RowsOnDisk" and len(handle) == 8 and len(handle.load()) == 8
    labels = [f"R0{i}" for i in range(8)]
    assert sorted(handle.load()["_row"]) == labels  # the live path appends rows as they are answered
    first = list(handle.head(3)["_row"])
    assert len(first) == 3 and set(first) <= set(labels)


def test_cache_subcommand_shows_and_clears(rows_shell: Shell) -> None:
    rows_shell.run(CELL.replace("-o extracted", "-o extracted --limit 3"))
    table = rows_shell.ip.run_line_magic("interact", "cache")
    assert table.rows[0][0] == "3" and table.rows[0][2].endswith("rows.sqlite3")
    rows_shell.ip.run_line_magic("interact", "cache clear")
    assert rows_shell.ip.run_line_magic("interact", "cache").rows[0][0] == "0"


@pytest.mark.parametrize(("line", "expected"), [
    ("--over nothing", "--over nothing: no such variable"),
    ("--over reviews --chain x", "--chain cannot be used with it"),
    ("--limit 3", "--limit applies to rows: add --over NAME"),
    ("--over reviews --limit 0", "--limit must be at least 1"),
    ("--over shop_name", "expected a DataFrame (pandas or polars), a Series, a pyarrow Table"),
])  # fmt: skip
def test_row_mistakes_are_one_line(rows_shell: Shell, line: str, expected: str) -> None:
    rows_shell.run('shop_name = "north"')
    error = rows_shell.fail(f"%%interact {line}\n{{{{row.shop}}}}")
    assert expected in str(error) and "\n" not in str(error)


def test_an_unknown_column_is_named_with_the_columns(rows_shell: Shell) -> None:
    error = rows_shell.fail("%%interact --over reviews\n{{row.stars}}")
    assert "row 0" in str(error) and "its columns: review text, shop" in str(error)


def test_a_later_row_lacking_a_column_stops_the_run_in_one_line_and_keeps_what_was_answered(shell: Shell, server: Any) -> None:
    # rows render while the first ones are sent: a later row that cannot render stops dispatch, the rows
    # already answered stay cached, -o is not bound, and the re-run after the fix sends only the rest
    shell.run('orders = [{"item": f"kettle {i}"} for i in range(300)] + [{"name": "teapot"}] + [{"item": "cup"}] * 50')
    before = creates(server)
    error = shell.fail("%%interact --over orders -o said --concurrency 4\nSay {{row.item}}")
    assert "row 300" in str(error) and "its columns: name" in str(error) and "\n" not in str(error)
    assert f"the {creates(server) - before} rows answered before it are cached" in str(error)
    assert "said" not in shell.ip.user_ns
    sent = creates(server) - before
    assert 1 <= sent <= 300  # the rows before it, as far as dispatch got; none after it
    shell.run('orders[300] = {"item": "teapot"}')
    shell.run("%%interact --over orders -o said --concurrency 4\nSay {{row.item}}")
    frame = shell.ip.user_ns["said"]
    assert (frame["_status"] == "ok").all() and creates(server) - before == 302  # 300 kettles, a teapot, one cup


def test_service_tier_passes_through(shell: Shell, server: Any) -> None:
    shell.run("%%interact --service-tier flex --no-stream\nHello")
    sent = [r["json"] for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions") and "input" in (r["json"] or {})][-1]
    assert sent["service_tier"] == "flex"


def test_image_and_path_columns_go_as_media_parts(shell: Shell, server: Any, tmp_path: Any) -> None:
    from PIL import Image

    note = tmp_path / "note.txt"
    note.write_text("a receipt: 3 kettles")
    shell.ip.user_ns.update(photos=pd.DataFrame({"photo": [Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")],
                                                 "doc": [note, note]}))  # fmt: skip
    shell.run("%%interact --over photos -o seen\nWhat is in {{row.photo}}? And in {{row.doc}}?")
    sent = [r["json"]["input"] for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions") and "input" in (r["json"] or {})][-2:]
    for parts in sent:
        kinds = [p["type"] for p in parts]
        assert kinds == ["text", "image", "text", "document", "text"] and parts[1]["mime_type"] == "image/png"
    assert sent[0][1]["data"] != sent[1][1]["data"] and (shell.ip.user_ns["seen"]["_status"] == "ok").all()


def test_row_files_are_read_when_sent_not_when_the_rows_are_built(shell: Shell, server: Any, tmp_path: Any) -> None:
    import base64

    from gemini_magics.inputs import PendingInline

    files = []
    for n in range(3):
        files.append(tmp_path / f"scan{n}.txt")
        files[-1].write_text(f"scan {n}: " + "x" * 100_000)
    shell.ip.user_ns["scans"] = [{"file": f} for f in files]
    dry = shell.run("%%interact --over scans --dry-run\nDescribe {{row.file}}")
    held = [p for p in dry.request["input"] if not isinstance(p, dict)]
    assert len(held) == 1 and isinstance(held[0], PendingInline)  # a path, not 100 KB of base64
    shown = dry.summary()["input"][1]
    assert shown["file"] == str(files[0]) and shown["sent"] == "inline, read when sent"
    shell.run("%%interact --over scans -o described\nDescribe {{row.file}}")
    sent = [r["json"]["input"] for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions") and "input" in (r["json"] or {})][-3:]
    texts = sorted(base64.b64decode(parts[1]["data"])[:6].decode() for parts in sent)
    assert texts == ["scan 0", "scan 1", "scan 2"] and (shell.ip.user_ns["described"]["_status"] == "ok").all()


def test_rows_naming_one_big_file_upload_it_once(shell: Shell, server: Any, tmp_path: Any) -> None:
    scan = tmp_path / "scan.txt"
    scan.write_text("x" * (3 * 1024 * 1024))  # past the rows' inline limit: through the Files API
    shell.ip.user_ns["pages"] = [{"n": n, "file": scan} for n in range(6)]
    before = len(requests_to(server, "/upload/v1beta/files"))
    shell.run("%%interact --over pages -o read --concurrency 6\nPage {{row.n}}: {{row.file}}")
    assert len(requests_to(server, "/upload/v1beta/files")) - before == 1  # six rows at once, one upload
    assert (shell.ip.user_ns["read"]["_status"] == "ok").all()


def test_store_keeps_row_interactions_on_the_server(shell: Shell, server: Any) -> None:
    shell.run('notes = ["keep me"]')
    shell.run("%%interact --over notes --store -o kept\nSay {{row.text}}")
    sent = [r["json"] for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions") and "input" in (r["json"] or {})][-1]
    assert "store" not in sent and "previous_interaction_id" not in sent  # stored (the API's default), still stateless
    from gemini_magics import Client

    with Client(base_url=server.base_url) as client:
        assert client.interactions.get(shell.ip.user_ns["kept"].loc[0, "_id"]).status == "completed"


# -- the everyday --over ----------------------------------------------------------------------------------


def test_over_takes_a_reference_into_a_variable(shell: Shell, server: Any) -> None:
    shell.run('import pandas as pd\nnotes = pd.DataFrame({"text": ["tea", "cake"], "n": [1, 2]}, index=["a", "b"])')
    for over in ("notes.text", 'notes["text"]', "notes[text]"):  # the line's quotes may be gone: a column still
        before = creates(server)
        shell.run(f"%%interact --over {over} -o said --no-cache\nSay {{{{row.text}}}}")
        frame = shell.ip.user_ns["said"]
        assert list(frame.index) == ["a", "b"] and creates(server) - before == 2, over
        assert frame.loc["b", "text"].endswith("Say cake")
    for bad, words in (("notes.nope", "no attribute 'nope'"), ("nobody.text", "no such variable"),
                       ("notes.text()", "give a variable, or a column of one")):  # fmt: skip
        error = shell.fail(f"%%interact --over {bad}\nSay {{{{row}}}}")
        assert words in str(error) and "\n" not in str(error), str(error)


def test_rows_with_missing_values_are_flagged_not_sent_as_nan(shell: Shell, server: Any) -> None:
    shell.run('import pandas as pd\nimport numpy as np\n'
              'gaps = pd.DataFrame({"text": ["fine", np.nan, None, "  ", "also fine"]})')  # fmt: skip
    before = creates(server)
    result = shell.run("%%interact --over gaps -o out --no-cache\nSay {{row.text}}")
    frame = shell.ip.user_ns["out"]
    assert creates(server) - before == 2 and list(frame["_status"]) == ["ok", "skipped", "skipped", "skipped", "ok"]
    assert frame.loc[1, "_error"] == "not sent: {{row.text}} is NaN (--keep-missing sends such rows)"
    assert frame.loc[2, "_error"].startswith("not sent: {{row.text}} is") and "is empty" in frame.loc[3, "_error"]
    assert "5 rows: 2 ok, 3 skipped (missing input)" in result.summary
    sent = [r["json"]["input"] for r in requests_to(server, "/interactions") if "input" in (r["json"] or {})]
    assert not any("nan" in str(text).lower() for text in sent[-2:])
    before = creates(server)
    shell.run("%%interact --over gaps -o out --no-cache --keep-missing\nSay {{row.text}}")
    assert creates(server) - before == 4 and (shell.ip.user_ns["out"]["_status"] == "ok").all()  # two NaN rows: one request
    shell.ip.user_ns["listed"] = [{"text": None}, {"text": "here"}]
    shell.run("%%interact --over listed -o out --no-cache\nSay {{row.text}}")
    assert shell.ip.user_ns["out"].loc[0, "_error"].startswith("not sent: {{row.text}} is None")


def test_columns_are_typed_as_the_schema_says(shell: Shell) -> None:
    shell.run('''
from typing import Literal, Optional
from pydantic import BaseModel
import pandas as pd

class Mood(BaseModel):
    mood: Literal["happy", "sad"]
    stars: Optional[int]
    score: Optional[float]
    fine: bool

moods = ["one", "two", "three"]
''')
    shell.run("%%interact --over moods --schema Mood -o typed --no-cache\nRate {{row.text}}")
    frame = shell.ip.user_ns["typed"]
    assert str(frame["stars"].dtype) == "Int64" and str(frame["score"].dtype) == "Float64"
    assert str(frame["fine"].dtype) == "boolean" and str(frame["mood"].dtype) == "category"
    assert list(frame["mood"].cat.categories) == ["happy", "sad"]
    assert str(frame["_status"].dtype) == str(frame["_error"].dtype) == "string"


def test_concurrency_follows_the_backend_unless_set(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    shell.ip.user_ns["texts"] = ["a", "b"]
    seen = []
    for backend, configured, expected in (("local:smollm2", 0, 1), ("local:scripted", 0, 8),
                                          ("https://generativelanguage.googleapis.com", 0, 8), ("local:smollm2", 3, 3)):  # fmt: skip
        monkeypatch.setattr(shell.magics.session, "backend_identity", lambda b=backend: b)
        shell.ip.run_line_magic("config", f"InteractMagics.concurrency = {configured}")
        dry = shell.run("%%interact --over texts --dry-run\nSay {{row.text}}")
        seen.append(dry.concurrency)
        assert dry.concurrency == expected, (backend, configured)
    assert shell.run("%%interact --over texts --dry-run --concurrency 5\nSay {{row.text}}").concurrency == 5


def test_a_row_that_times_out_is_not_sent_twice(shell: Shell, server: Any) -> None:
    shell.ip.user_ns["texts"] = ["slow one", "slow two"]
    shell.ip.run_line_magic("config", "InteractMagics.timeout = 0.5")
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "200", "X-Scripted-Deltas": "10"}')
    before = creates(server)
    result = shell.run("%%interact --over texts -o out --no-cache\nSay {{row}}")
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    errors = list(shell.ip.user_ns["out"]["_error"])
    assert creates(server) - before == 2  # one request each: slow is not lost
    assert all(e.startswith("no answer within 0.5 s (the client's timeout); not sent again") for e in errors), errors
    assert "lowered to" not in result.summary  # a client timeout is not the server's doing


def test_a_sample_is_random_reproducible_and_cached(rows_shell: Shell, server: Any) -> None:
    cell = CELL.replace("-o extracted", "-o picked --sample 5")
    before = creates(server)
    result = rows_shell.run(cell)
    first = list(rows_shell.ip.user_ns["picked"].index)
    assert creates(server) - before == 5 and len(first) == 5 and first != [f"R{i:02}" for i in range(5)]
    assert first == sorted(first) and "--sample: 5 of 40 rows" in result.summary
    again = creates(server)
    rows_shell.run(cell)
    assert list(rows_shell.ip.user_ns["picked"].index) == first and creates(server) == again  # the same draw: cached
    rows_shell.run(cell.replace("--sample 5", "--sample 5 --sample-seed 7"))
    assert list(rows_shell.ip.user_ns["picked"].index) != first
    error = rows_shell.fail(cell.replace("--sample 5", "--sample 5 --limit 3"))
    assert "use one of them" in str(error)


def test_flatten_gives_nested_objects_columns_of_their_own(shell: Shell) -> None:
    shell.run('''
from pydantic import BaseModel

class Address(BaseModel):
    city: str
    zip: int

class Shop(BaseModel):
    name: str
    address: Address

shops = ["north shop", "south shop"]
''')
    shell.run("%%interact --over shops --schema Shop -o nested --no-cache\nWhere is {{row.text}}?")
    nested = shell.ip.user_ns["nested"]
    assert list(nested.columns[:2]) == ["name", "address"] and isinstance(nested.iloc[0]["address"], dict)
    shell.run("%%interact --over shops --schema Shop --flatten -o flat\nWhere is {{row.text}}?")
    flat = shell.ip.user_ns["flat"]
    assert list(flat.columns[:3]) == ["name", "address.city", "address.zip"]
    assert str(flat["address.zip"].dtype) == "Int64" and flat.iloc[0]["address.city"] == nested.iloc[0]["address"]["city"]
    assert "--flatten applies to rows" in str(shell.fail("%%interact --flatten\nHi"))


def test_check_scores_answers_against_labels(rows_shell: Shell) -> None:
    rows_shell.run(CELL)
    answers = rows_shell.ip.user_ns["extracted"]
    rows_shell.run("truth = extracted[['rating']].astype('object').copy()\n"
                   "truth.loc['R03', 'rating'] = 1\ntruth.loc['R05', 'rating'] = 2")  # two labels the answers miss
    result = rows_shell.run(CELL.replace("-o extracted", "-o rechecked --check truth"))
    report = result.check
    rated = int(answers["rating"].notna().sum())
    assert report.scored == {"rating": rated} and report.accuracy["rating"] == (rated - 2) / rated
    assert list(report.disagreements.index) == ["R03", "R05"]
    assert list(report.disagreements.columns) == ["rating (label)", "rating"]
    assert f"check: rating {(rated - 2) / rated:.0%} of {rated} · 2 rows disagree" in repr(result)
    rows_shell.run('reviews["product"] = "example product"')  # labels in a column of the --over frame itself
    by_column = rows_shell.run(CELL.replace("-o extracted", "-o again --check product"))
    assert by_column.check.accuracy == {"product": 1.0} and by_column.check.disagreements.empty
    wrong_name = rows_shell.fail(CELL.replace("-o extracted", "-o x --check truth.rating.astype"))
    assert "labels must be a DataFrame or Series, not method" in str(wrong_name)
    error = rows_shell.fail(CELL.replace("-o extracted", "-o x --check nothing_here"))
    assert "--check nothing_here: no such variable or --over column" in str(error)


def test_check_makes_a_confusion_table_for_literal_fields(shell: Shell) -> None:
    shell.run('''
from typing import Literal
from pydantic import BaseModel
import pandas as pd

class Mood(BaseModel):
    mood: Literal["happy", "sad"]

said = pd.DataFrame({"text": ["great day", "awful day", "fine day"]})
labels = pd.Series(["happy", "sad", "happy"], name="mood")
''')
    result = shell.run("%%interact --over said --schema Mood -o moods --check labels --no-cache\nMood of: {{row.text}}")
    table = result.check.confusion["mood"]
    assert table.index.name == "mood (label)" and table.columns.name == "mood (answer)"
    assert int(table.to_numpy().sum()) == 3
    assert "<table" in result._repr_mimebundle_()["text/html"].split("gm-rows-check", 1)[1]


def test_two_models_answer_every_row_side_by_side(rows_shell: Shell, server: Any) -> None:
    models = "gemini-3-flash-preview,gemini-3-pro-preview"
    before = creates(server)
    result = rows_shell.run(CELL.replace("-o extracted", f"-o compared -m {models} --limit 6"))
    frame = rows_shell.ip.user_ns["compared"]
    assert creates(server) - before == 12 and len(frame) == 6
    assert list(frame.columns[:4]) == ["product@gemini-3-flash-preview", "product@gemini-3-pro-preview",
                                       "rating@gemini-3-flash-preview", "rating@gemini-3-pro-preview"]  # fmt: skip
    sent = {r["json"].get("model") for r in requests_to(server, "/interactions") if "input" in (r["json"] or {})}
    assert {"gemini-3-flash-preview", "gemini-3-pro-preview"} <= sent
    assert result.summary.startswith("6 rows × 2 models: 12 ok")
    assert "models agree: product 100%, rating 100%" in result.summary  # the scripted engine answers alike
    rows_shell.run('truth = pd.DataFrame({"rating": compared["rating@gemini-3-flash-preview"]})')
    checked = rows_shell.run(CELL.replace("-o extracted", f"-o compared -m {models} --limit 6 --check truth"))
    assert set(checked.check) == set(models.split(",")) and all(r.accuracy["rating"] == 1.0 for r in checked.check.values())
    assert "gemini-3-pro-preview: check: rating 100%" in repr(checked)
    assert "compares models on live rows" in str(rows_shell.fail(CELL.replace("-o extracted", f"-m {models} --batch")))


# -- rows from where the data lives ---------------------------------------------------------------------


def test_rows_from_polars_pyarrow_and_files(shell: Shell, server: Any, tmp_path: Any) -> None:
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = ["ant", "bee", "cat"]
    pq.write_table(pa.table({"text": texts[:2]}), tmp_path / "part-1.parquet")
    pq.write_table(pa.table({"text": texts[2:]}), tmp_path / "part-2.parquet")
    (tmp_path / "rows.csv").write_text("text,n\nant,1\nbee,2\ncat,3\n")
    (tmp_path / "rows.jsonl").write_text("".join(f'{{"text": "{t}"}}\n' for t in texts))
    shell.ip.user_ns.update(frame_pl=pl.DataFrame({"text": texts}), table_pa=pa.table({"text": texts}))
    for over in ("frame_pl", "table_pa", f"{tmp_path}/part-*.parquet", f"{tmp_path}/rows.csv", f"{tmp_path}/rows.jsonl"):
        shell.run(f'%%interact --over "{over}" -o said\nSay {{{{row.text}}}}')
        frame = shell.ip.user_ns["said"]
        assert list(frame.index) == [0, 1, 2] and [t.rsplit(" ", 1)[-1] for t in frame["text"]] == texts, over
    for bad, words in ((f"{tmp_path}/none-*.parquet", "no such file"), (f"{tmp_path}/rows.txt", "no such file")):
        assert words in str(shell.fail(f'%%interact --over "{bad}"\nSay {{{{row.text}}}}'))
    (tmp_path / "mixed.csv").write_text("text\nx\n")
    assert "must all be Parquet" in str(shell.fail(f'%%interact --over "{tmp_path}/*.*"\nSay {{{{row.text}}}}'))


def test_the_extension_imports_no_columnar_library_until_asked() -> None:
    import subprocess
    import sys

    probe = ("import sys; from IPython.testing.globalipapp import start_ipython; ip = start_ipython(); "
             "ip.run_line_magic('load_ext', 'gemini_magics'); "
             "print(sorted(m for m in ('polars', 'pyarrow', 'pandas') if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "parquet"])
def test_out_writes_rows_as_they_come_and_a_rerun_adds_only_the_rest(rows_shell: Shell, tmp_path: Any, suffix: str) -> None:
    import pandas as pd

    path = tmp_path / f"results.{suffix}"
    first = rows_shell.run(CELL.replace("-o extracted", f"-o extracted --limit 10 --out {path} --no-cache"))
    read = {"jsonl": lambda: pd.read_json(path, lines=True, dtype=False), "csv": lambda: pd.read_csv(path),
            "parquet": lambda: pd.read_parquet(path)}[suffix]  # fmt: skip
    held = read()
    assert sorted(held["_row"].astype(str)) == [f"R{i:02}" for i in range(10)]
    assert {"_row", "product", "rating", "_status", "_error"} <= set(held.columns) and f"10 rows written to {path}" in first.summary
    frame = rows_shell.ip.user_ns["extracted"]
    assert float(held.set_index(held["_row"].astype(str)).loc["R03", "rating"]) == float(frame.loc["R03", "rating"])
    rows_shell.run(CELL.replace("-o extracted", f"-o extracted --limit 15 --out {path}"))
    held = read()
    labels = list(held["_row"].astype(str))
    assert sorted(set(labels)) == [f"R{i:02}" for i in range(15)]  # the five new rows added
    assert labels.count("R03") == 1  # an answered row is never written twice
    assert "--out applies to rows" in str(rows_shell.fail(f"%%interact --out {path}\nHi"))
    assert "write .jsonl, .csv or .parquet" in str(rows_shell.fail(CELL.replace("-o extracted", f"--out {tmp_path}/r.xlsx")))
