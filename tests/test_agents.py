"""Agents from a cell: the embedded server's Deep Research stand-in, run in the background and bound when done."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Shell, requests_to
from gemini_magics.run.handle import BackgroundRun


def creates(server: Any) -> list[dict[str, Any]]:
    return [r["json"] for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions") and isinstance(r["json"], dict)]


def test_an_agent_runs_in_the_background_and_a_model_cell_continues_its_chain(shell: Shell, server: Any) -> None:
    run = shell.run("%%interact --agent deep-research-pro-preview-12-2025 --chain research -o report\nWhat is oolong tea?")
    assert isinstance(run, BackgroundRun) and run.status == "in_progress" and "report" not in shell.ip.user_ns
    sent = creates(server)[-1]
    assert sent["agent"] == "deep-research-pro-preview-12-2025" and sent["background"] is True
    assert sent["agent_config"] == {"type": "deep-research"} and "model" not in sent
    assert shell.run("1 + 1") == 2  # the kernel stays free
    result = shell.ip.run_line_magic("interact", "wait")
    assert result.id == run.id and shell.ip.user_ns["report"].id == run.id
    kinds = [s.type for s in result.steps]
    assert kinds[0] == "thought" and "google_search_call" in kinds and kinds[-1] == "model_output"
    assert result.text.startswith("# Research report") and "## Sources" in result.text
    summary = shell.run("%%interact --chain research\nSummarise the report in one line.")
    assert creates(server)[-1]["previous_interaction_id"] == run.id and summary.text


def test_agent_config_passes_through(shell: Shell, server: Any) -> None:
    shell.ip.run_line_magic("config", 'InteractMagics.agent_config = {"visualization": "auto"}')
    shell.run("%%interact --agent deep-research-preview-04-2026 --agent-config '{\"thinking_summaries\": \"none\"}' -o quiet\nTea?")
    assert creates(server)[-1]["agent_config"] == {"type": "deep-research", "visualization": "auto", "thinking_summaries": "none"}
    result = shell.ip.run_line_magic("interact", "wait")
    assert "thought" not in [s.type for s in result.steps] and "| source | status |" in result.text


def test_an_agent_can_be_cancelled(shell: Shell) -> None:
    run = shell.run("%%interact --agent deep-research-max-preview-04-2026 -o never\nA long question")
    shell.ip.run_line_magic("interact", f"cancel {run.id}")
    error = shell.fail("%interact wait")
    assert "cancelled" in str(error) and "'never' was not bound" in str(error)


@pytest.mark.parametrize(("line", "expected"), [
    ("--agent deep-research-pro-preview-12-2025 --no-store", "drop --no-store"),
    ("--agent-config '{}'", "add --agent ID"),
    ("--agent deep-research-pro-preview-12-2025 --agent-config 'nope'", "--agent-config is not JSON"),
])  # fmt: skip
def test_agent_mistakes_are_one_line(shell: Shell, line: str, expected: str) -> None:
    error = shell.fail(f"%%interact {line}\nx")
    assert expected in str(error) and "\n" not in str(error)


def test_the_official_sdk_runs_a_background_agent_to_completion(server: Any) -> None:
    import time

    genai = pytest.importorskip("google.genai")
    from google.genai import types

    sdk = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=server.base_url, api_version="v1beta"))
    started = sdk.interactions.create(agent="deep-research-pro-preview-12-2025", input="What is oolong?", background=True)
    deadline = time.monotonic() + 30
    while (fetched := sdk.interactions.get(started.id)).status == "in_progress" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert fetched.status == "completed" and "## Sources" in fetched.output_text


AGENT = "deep-research-pro-preview-12-2025"


def test_wait_shows_the_agents_progress_as_it_streams(
    shell: Shell, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_MAGICS_AGENT_STEP_SECONDS", "0.8")  # progress to watch while it streams
    run = shell.run(f"%%interact --agent {AGENT} -o report\nWhat is oolong tea? See {shell.base_url}/")
    capsys.readouterr()
    result = shell.ip.run_line_magic("interact", "wait")
    printed = capsys.readouterr().out
    assert f"[{run.id}] in_progress (streaming)" in printed  # status and how it is followed
    assert "Thought: Thinking about the request: Plan: Understand the question" in printed  # thought summaries
    assert "Tool: search · What is oolong tea?" in printed and "Tool: read URLs · " in printed  # tool steps
    assert result.text.startswith("# Research report") and run.progress.mode == "ended"


def test_a_stalled_stream_falls_back_to_polling_then_resumes(shell: Shell, server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import gemini_magics.run.cell as runner
    import gemini_magics.run.follow as background

    monkeypatch.setattr(runner, "BACKGROUND_POLL_SECONDS", 0.1)
    monkeypatch.setattr(background, "POLLS_BEFORE_RESTREAM", 2)
    monkeypatch.setenv("GEMINI_MAGICS_AGENT_STEP_SECONDS", "0.8")  # a run long enough to stall, poll and resume
    modes: list[str] = []
    real_follow = background.follow

    def recording_follow(*args: Any, on_progress: Any, **kwargs: Any) -> Any:
        def record(progress: Any) -> None:
            if not modes or modes[-1] != progress.mode:
                modes.append(progress.mode)
            on_progress(progress)

        return real_follow(*args, on_progress=record, **kwargs)

    monkeypatch.setattr(background, "follow", recording_follow)
    shell.ip.run_line_magic("config", "InteractMagics.timeout = 1.5")
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Stall-After": "3"}')
    run = shell.run(f"%%interact --agent {AGENT} -o report\nWhat is oolong tea?")
    result = shell.ip.run_line_magic("interact", "wait")
    assert modes[:3] == ["streaming", "polling", "streaming"] and modes[-1] == "ended"
    streams = [r for r in requests_to(server, f"/interactions/{run.id}", "GET") if r["query"].get("stream") == "true"]
    assert "last_event_id" not in streams[0]["query"] and streams[-1]["query"]["last_event_id"]
    assert streams[0]["headers"]["x-scripted-stall-after"] == "3" and "x-scripted-stall-after" not in streams[-1]["headers"]
    assert result.text.startswith("# Research report") and shell.ip.user_ns["report"].id == run.id


def test_a_new_kernel_lists_running_agents_and_reattaches(make_shell: Any, server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from gemini_magics.journal import Journal, JournalEntry, default_cache_dir
    from gemini_magics.render.result import TextTable

    monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
    first = make_shell()
    run = first.run(f"%%interact --agent {AGENT} -o report\nWhat is oolong tea?")
    first.close()  # the kernel goes; the agent runs on at the server
    second = make_shell()
    listed = second.ip.run_line_magic("interact", "wait")
    assert isinstance(listed, TextTable) and [row[:3] for row in listed.rows] == [[run.id, AGENT, "report"]]
    assert listed.rows[0][4] == "this backend"
    result = second.ip.run_line_magic("interact", f"wait {run.id}")
    assert result.text.startswith("# Research report") and second.ip.user_ns["report"] is result
    assert "bound to 'report', as the cell that started it asked" in result.notes
    assert second.ip.run_line_magic("interact", "wait").rows == []  # it ended: no longer listed
    Journal(default_cache_dir()).add(JournalEntry("v1_elsewhere", "interaction", AGENT, "http://127.0.0.1:9/"))
    error = second.fail("%interact wait v1_elsewhere")
    assert "was started on http://127.0.0.1:9/, not on this kernel's backend" in str(error) and "\n" not in str(error)


def test_progress_lines_name_thoughts_tools_and_the_answer(server: Any) -> None:
    from gemini_magics import Client
    from gemini_magics.render.view import progress_lines

    with Client(base_url=server.base_url) as client:
        started = client.interactions.create(agent=AGENT, input="Tea?", background=True)
        final = client.interactions.wait(started.id, poll_interval=0.1)
    lines = progress_lines(final)
    assert lines[0].startswith("Thought: ") and lines[1].startswith("Tool: search · Tea? → search results · ") and lines[-1].startswith("Answer: writing (")


def test_a_cancelled_agent_keeps_the_steps_it_streamed(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from gemini_magics.render.view import progress_lines
    from gemini_magics.render.widgets import kept_steps

    monkeypatch.setenv("GEMINI_MAGICS_AGENT_STEP_SECONDS", "0.5")
    run = shell.run(f"%%interact --agent {AGENT} -o never\nWhat is oolong tea?")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (run.progress and run.progress.interaction and progress_lines(run.progress.interaction)):
        time.sleep(0.05)
    shell.ip.run_line_magic("interact", f"cancel {run.id}")
    assert run.done.wait(20) and run.status == "cancelled" and run.result is None
    bundle = kept_steps(run)
    assert "**cancelled**" in bundle["text/markdown"] and "Steps before it ended cancelled:" in bundle["text/markdown"]
    assert "- Thought: Thinking about the request" in bundle["text/markdown"] and "Thought: " in bundle["text/plain"]
