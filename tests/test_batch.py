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


def sent_lines(server: Any, create: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSONL lines a job was created from (its input file, as the server holds it)."""
    import json

    stored = server.api.store.files[create["inputConfig"]["fileName"]]
    return [json.loads(line) for line in stored.data.decode().splitlines() if line.strip()]


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


def test_a_batch_run_end_to_end(rows_shell: Shell, server: Any) -> None:
    from gemini_magics.run.batch import BatchRun

    run = rows_shell.run(CELL.replace("-o extracted", "-o extracted --batch"))
    assert isinstance(run, BatchRun) and not run.done.is_set() and "extracted" not in rows_shell.ip.user_ns
    assert rows_shell.run("1 + 1") == 2  # the kernel stays free
    create = batch_creates(server)[-1]
    assert "requests" not in create["inputConfig"]  # spooled to a JSONL file on disk, uploaded: never one payload
    sent = sent_lines(server, create)
    assert len(sent) == 40 and all(len(r["key"]) == 64 for r in sent)
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
    assert again.requests == 1 and len(sent_lines(server, batch_creates(server)[-1])) == 1
    assert again.done.wait(30) and rows_shell.ip.user_ns["said"].loc["R21", "_status"] == "error"
    before = server.api.creates
    rows_shell.run(TEXT_CELL.replace(" --batch", ""))
    assert server.api.creates - before == 3  # only R21 (three attempts at its 500): the rest came from the cache


def test_a_big_run_is_split_into_jobs_followed_together(rows_shell: Shell, server: Any) -> None:
    rows_shell.ip.run_line_magic("config", "InteractMagics.batch_job_rows = 15")
    before = len(batch_creates(server))
    run = rows_shell.run(TEXT_CELL)
    creates = batch_creates(server)[before:]
    assert [len(sent_lines(server, c)) for c in creates] == [15, 15, 10] and len(run.jobs) == 3
    assert run.done.wait(30) and run.error is None
    frame = rows_shell.ip.user_ns["said"]
    assert list(frame.index) == [f"R{i:02}" for i in range(40)] and frame.loc["R05", "text"].endswith("order 1005.")
    assert (frame["_status"] == "ok").sum() == 39 and frame.loc["R21", "_status"] == "error"
    listed = rows_shell.ip.run_line_magic("interact", "batch list")
    assert sorted(row[1] for row in listed.rows[:3]) == [f"{run.run} ({k}/3)" for k in (1, 2, 3)]


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
    assert [row[:4] for row in listed.rows][0] == [run.id, f"{run.run} (1/1)", "reviews", "extracted"]
    assert listed.rows[0][7] == "this backend"
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


def test_a_run_the_cache_answers_whole_sends_nothing(rows_shell: Shell, server: Any) -> None:
    cell = TEXT_CELL.replace("--over reviews", "--over reviews --limit 3")
    assert rows_shell.run(cell).done.wait(30)
    before = len(batch_creates(server))
    again = rows_shell.run(cell)
    assert again.done.is_set() and not again.jobs and len(batch_creates(server)) == before
    assert "answered by the row cache: nothing sent" in repr(again) and len(rows_shell.ip.user_ns["said"]) == 3


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


def test_a_new_kernel_resumes_a_run_without_sending_a_row_twice(make_shell: Any, server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
    first = make_shell()
    first.run(SETUP)
    first.ip.run_line_magic("config", "InteractMagics.batch_job_rows = 15")
    first.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "40"}')
    before = len(batch_creates(server))
    run = first.run(TEXT_CELL)
    jobs = list(run.jobs)
    assert len(jobs) == 3
    run.stopping.set()  # the kernel goes away mid-run: its jobs run on
    first.close()
    second = make_shell()  # a new kernel, the same cell
    second.run(SETUP)
    second.ip.run_line_magic("config", "InteractMagics.batch_job_rows = 15")
    again = second.run(TEXT_CELL)
    assert len(batch_creates(server)) == before + 3  # no job sent again: the run follows the three still running
    assert list(again.jobs) == jobs and again.requests == 0 and again.followed == 40
    assert again.done.wait(30) and again.error is None
    frame = second.ip.user_ns["said"]
    assert list(frame.index) == [f"R{i:02}" for i in range(40)] and (frame["_status"] == "ok").sum() == 39
    third = second.run(TEXT_CELL)  # once read, the answers are cached: only the failed row (R21) goes again
    assert third.requests == 1 and third.done.wait(30)


def test_rows_from_a_parquet_file_to_an_out_file_past_max_frame_rows(rows_shell: Shell, tmp_path: Any) -> None:
    pytest.importorskip("pyarrow")
    source, out = tmp_path / "reviews.parquet", tmp_path / "said.parquet"
    rows_shell.run(f"reviews.reset_index(drop=True).to_parquet({str(source)!r})")
    rows_shell.ip.run_line_magic("config", "InteractMagics.max_frame_rows = 10")
    run = rows_shell.run(TEXT_CELL.replace("--over reviews", f"--over {source} --out {out}"))
    assert run.done.wait(30) and run.error is None
    said = rows_shell.ip.user_ns["said"]
    from gemini_magics.render.result import RowsOnDisk

    assert isinstance(said, RowsOnDisk) and len(said) == 40 and said.path == out
    assert "40 rows in" in repr(said) and "max_frame_rows" in repr(said)
    frame = said.load()
    assert list(frame["_row"]) == [str(i) for i in range(40)] and (frame["_status"] == "ok").sum() == 39
    assert frame.loc[5, "text"].endswith("order 1005.") and list(said.head(2)["_row"]) == ["0", "1"]


def test_an_upload_cut_off_mid_way_resumes_where_the_server_stopped(server: Any, tmp_path: Any) -> None:
    import httpx

    from gemini_magics import Client

    data = b"".join(b'{"key": "k%d", "request": {"contents": [{"parts": [{"text": "row %d"}]}]}}\n' % (i, i) for i in range(3000))
    path = tmp_path / "requests.jsonl"
    path.write_bytes(data)
    with Client(base_url=server.base_url) as client:
        send = client._http.send
        cut: list[str] = []

        def flaky(request: httpx.Request, **kwargs: Any) -> httpx.Response:
            offset = request.headers.get("x-goog-upload-offset")
            if offset not in (None, "0") and not cut:  # the second chunk is lost on the way, once
                cut.append(offset)
                raise httpx.ConnectError("connection reset", request=request)
            return send(request, **kwargs)

        client._http.send = flaky  # type: ignore[method-assign]
        uploaded = client.files.upload(path, mime_type="application/jsonl", chunk_size=40_000)
        client._http.send = send  # type: ignore[method-assign]
        assert cut and client.files.download(uploaded.name) == data
        queries = [r for r in server.api.requests if (r.get("headers") or {}).get("x-goog-upload-command") == "query"]
        assert queries, "the client asked the server how much it held before going on"


def test_a_results_line_that_is_not_json_fails_alone(server: Any, tmp_path: Any) -> None:
    from gemini_magics import Client

    path = tmp_path / "requests.jsonl"
    path.write_text('{"key": "a", "request": {"contents": [{"parts": [{"text": "Hello"}]}]}}\nnot json\n'
                    '{"key": "c", "request": {"contents": [{"parts": [{"text": "Bye"}]}]}}\n')  # fmt: skip
    with Client(base_url=server.base_url) as client:
        uploaded = client.files.upload(path, mime_type="application/jsonl")
        job = client.batches.create(model="m", file_name=uploaded.name)
        deadline = time.monotonic() + 30
        while not (job := client.batches.get(job.name)).done and time.monotonic() < deadline:
            time.sleep(0.05)
        results = list(client.batches.results(job))
    assert job.batch_stats.request_count == 3 and job.batch_stats.failed_request_count == 1
    assert sorted(r.key or "" for r in results if r.response) == ["a", "c"] and sum(r.error is not None for r in results) == 1
