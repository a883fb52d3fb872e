"""Agents from a cell: the embedded server's Deep Research stand-in, run in the background and bound when done."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Shell, requests_to
from gemini_magics.render.result import BackgroundRun


def creates(server: Any) -> list[dict[str, Any]]:
    return [r["json"] for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions")]


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
