"""--over NAME --batch: the rows as a Batch API job on the local server, followed in the background."""

from __future__ import annotations

import time
from typing import Any

import pytest
from test_rows import CELL, SETUP

from conftest import Shell, requests_to

pytest.importorskip("pandas")

TEXT_CELL = "%%interact --over reviews --batch -o said\nSay {{row[\"review text\"]}}"


@pytest.fixture
def rows_shell(shell: Shell) -> Shell:
    shell.run(SETUP)
    return shell


def batch_creates(server: Any) -> list[dict[str, Any]]:
    return [r["json"]["batch"] for r in requests_to(server, ":batchGenerateContent")]


def test_a_batch_watcher_can_be_stopped_and_the_job_runs_on(rows_shell: Shell, server: Any) -> None:
    rows_shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "100", "X-Scripted-Deltas": "5"}')
    run = rows_shell.run(CELL.replace("-o extracted", "-o extracted --batch --no-cache"))
    run.stopping.set()
    assert run.done.wait(5) and "stopped following" in (run.error or "") and "'extracted' was not bound" in run.error
    assert "extracted" not in rows_shell.ip.user_ns
    rows_shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    from gemini_magics import Client

    with Client(base_url=server.base_url) as client:  # the job itself was not touched
        assert client.batches.get(run.id).state in ("BATCH_STATE_RUNNING", "BATCH_STATE_PENDING", "BATCH_STATE_SUCCEEDED")


def test_inline_batch_end_to_end(rows_shell: Shell, server: Any) -> None:
    from gemini_magics.run.batch import BatchRun

    run = rows_shell.run(CELL.replace("-o extracted", "-o extracted --batch"))
    assert isinstance(run, BatchRun) and not run.done.is_set() and "extracted" not in rows_shell.ip.user_ns
    assert rows_shell.run("1 + 1") == 2  # the kernel stays free
    sent = batch_creates(server)[-1]["inputConfig"]["requests"]["requests"]
    assert len(sent) == 40 and all(len(r["metadata"]["key"]) == 64 for r in sent)
    config = sent[0]["request"]["generationConfig"]
    assert config["responseMimeType"] == "application/json" and config["responseJsonSchema"]["required"] == ["product", "rating"]
    assert run.done.wait(30) and run.error is None
    frame = rows_shell.ip.user_ns["extracted"]
    assert list(frame.index) == [f"R{i:02}" for i in range(40)] and str(frame["rating"].dtype) == "Int64"
    assert frame.loc["R03", "rating"] == 4 and frame.loc["R07", "_status"] == "error" and "1 to 5 stars" in frame.loc["R07", "_error"]
    assert frame.loc["R21", "_status"] == "error" and "(INTERNAL)" in frame.loc["R21", "_error"]  # a google.rpc.Code
    assert run.result.summary.startswith("batch 40 rows: 38 ok, 2 failed (1 server, 1 validation)")
    status_line = run._repr_mimebundle_()["text/html"].split("<p class='gm-rows-summary'>")[0]
    assert status_line.startswith("<p>Batch job batches/") and "`" not in status_line  # no raw Markdown in HTML


def test_results_are_matched_by_key_and_cached(rows_shell: Shell, server: Any) -> None:
    run = rows_shell.run(TEXT_CELL)
    assert run.done.wait(30) and run.error is None
    frame = rows_shell.ip.user_ns["said"]
    for label in ("R00", "R13", "R39"):  # the server answers in completion order: each answer is its own row's
        assert frame.loc[label, "text"].endswith(rows_shell.ip.user_ns["reviews"].loc[label, "review text"])
    again = rows_shell.run(TEXT_CELL)  # only the row without an answer (R21 failed) goes again
    assert again.requests == 1 and len(batch_creates(server)[-1]["inputConfig"]["requests"]["requests"]) == 1
    assert again.done.wait(30) and rows_shell.ip.user_ns["said"].loc["R21", "_status"] == "error"
    before = server.api.creates
    rows_shell.run(TEXT_CELL.replace(" --batch", ""))
    assert server.api.creates - before == 3  # only R21 (three attempts at its 500): the rest came from the cache


def test_a_big_job_goes_as_a_jsonl_file(rows_shell: Shell, server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import gemini_magics.resources.batches as batches

    monkeypatch.setattr(batches, "INLINE_LIMIT_BYTES", 1000)
    run = rows_shell.run(TEXT_CELL)
    config = batch_creates(server)[-1]["inputConfig"]
    assert config["fileName"].startswith("files/") and "requests" not in config
    assert run.done.wait(30) and run.error is None and run.batch.responses_file.startswith("files/batch-")
    frame = rows_shell.ip.user_ns["said"]
    assert frame.loc["R05", "text"].endswith("order 1005.") and (frame["_status"] == "ok").sum() == 39


def test_a_new_kernel_lists_and_loads_a_job(make_shell: Any, server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
    first = make_shell()
    first.run(SETUP)
    run = first.run(CELL.replace("-o extracted", "-o extracted --batch"))
    assert run.done.wait(30)
    first.ip.run_line_magic("interact", "cache clear")
    first.close()
    second = make_shell()
    second.run(SETUP)
    listed = second.ip.run_line_magic("interact", "batch list")
    assert [row[:3] for row in listed.rows][0] == [run.id, "reviews", "extracted"] and listed.rows[0][6] == "this backend"
    loaded = second.ip.run_line_magic("interact", f"batch load {run.id} -o again --schema Review")
    frame = second.ip.user_ns["again"]
    assert loaded.frame is frame and list(frame.index) == [f"R{i:02}" for i in range(40)]
    assert frame.loc["R07", "_status"] == "error" and frame.loc["R03", "rating"] == 4
    got = second.ip.run_line_magic("interact", f"batch get {run.id}")
    assert got.rows[0][1] == "BATCH_STATE_SUCCEEDED" and got.rows[0][2] == "40"


def test_cancel_ends_the_job_and_binds_nothing(rows_shell: Shell) -> None:
    rows_shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "200"}')
    run = rows_shell.run(TEXT_CELL)
    rows_shell.ip.run_line_magic("interact", f"batch cancel {run.id}")
    assert run.done.wait(30)
    assert "ended cancelled" in run.error and "'said' was not bound" in run.error and "said" not in rows_shell.ip.user_ns


def test_a_job_every_row_of_which_is_cached_is_refused(rows_shell: Shell) -> None:
    cell = TEXT_CELL.replace("--over reviews", "--over reviews --limit 3")
    assert rows_shell.run(cell).done.wait(30)
    error = rows_shell.fail(cell)
    assert "every row is answered by the row cache already" in str(error) and "\n" not in str(error)


@pytest.mark.parametrize(("line", "expected"), [
    ("--batch", "--batch applies to rows: add --over NAME"),
    ("--over reviews --batch --budget 10", "--concurrency, --budget and --service-tier apply to live rows"),
])  # fmt: skip
def test_batch_mistakes_are_one_line(rows_shell: Shell, line: str, expected: str) -> None:
    error = rows_shell.fail(f"%%interact {line}\n{{{{row.shop}}}}")
    assert expected in str(error) and "\n" not in str(error)


def test_the_official_sdk_runs_batches_inline_and_from_a_file(server: Any, tmp_path: Any) -> None:
    genai = pytest.importorskip("google.genai")
    from google.genai import types

    sdk = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=server.base_url, api_version="v1beta"))
    inline = sdk.batches.create(model="gemini-3-flash-preview", src=[
        {"contents": [{"parts": [{"text": "Hello"}], "role": "user"}], "metadata": {"key": "a"}}])  # fmt: skip
    lines = tmp_path / "requests.jsonl"
    lines.write_text('{"key": "b", "request": {"contents": [{"parts": [{"text": "Bonjour"}]}]}}\n')
    uploaded = sdk.files.upload(file=str(lines), config={"mime_type": "application/jsonl"})
    from_file = sdk.batches.create(model="gemini-3-flash-preview", src=uploaded.name)
    deadline = time.monotonic() + 30
    while (job := sdk.batches.get(name=inline.name)).state.name != "JOB_STATE_SUCCEEDED" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.dest.inlined_responses[0].response.text.endswith("Hello")
    assert job.dest.inlined_responses[0].metadata == {"key": "a"}
    while (done := sdk.batches.get(name=from_file.name)).state.name != "JOB_STATE_SUCCEEDED" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert done.dest.file_name.startswith("files/batch-")
    assert b'"key": "b"' in sdk.files.download(file=done.dest.file_name) and inline.name in [j.name for j in sdk.batches.list()]


def test_a_job_whose_embedded_server_ended_is_lost_and_can_be_forgotten(shell: Shell) -> None:
    from gemini_magics.journal import JournalEntry

    journal = shell.magics.session.journal()
    journal.add(JournalEntry("batches/gone123", "batch", "m", "http://127.0.0.1:1", out="old",
                             detail={"source": "reviews", "requests": 3, "embedded": True}))  # fmt: skip
    listed = repr(shell.ip.run_line_magic("interact", "batch list"))
    assert "batches/gone123" in listed and "lost: its embedded server ended with its kernel" in listed
    error = shell.fail("%interact batch load batches/gone123 -o old")
    assert "ran on the embedded server of an earlier kernel" in str(error) and "\n" not in str(error)
    shell.ip.run_line_magic("interact", "batch forget batches/gone123")
    assert "gone123" not in repr(shell.ip.run_line_magic("interact", "batch list"))
    assert "is not in the journal" in str(shell.fail("%interact batch forget batches/gone123"))
