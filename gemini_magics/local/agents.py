"""Agents on the local server: a Deep Research stand-in that really goes through a research plan.

``deep-research-*`` agents (the guide's ``deep-research-pro-preview-12-2025`` and today's
``deep-research-preview-04-2026`` / ``deep-research-max-preview-04-2026``) run a multi-step plan over
several seconds: thought summaries (unless ``agent_config.thinking_summaries`` is ``none``), a search
step (offline: it says so), a URL step that really fetches the loopback or allowed URLs the question
names, and a final Markdown report with a sources list. Cancellation stops it between steps.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engines.base import EngineRequest
    from .engines.writer import StepWriter

AGENTS = (
    "deep-research-pro-preview-12-2025",
    "deep-research-preview-04-2026",
    "deep-research-max-preview-04-2026",
)
STEP_SECONDS = 0.8
"""The pause between the plan's steps (research takes a while; a Cancel lands between steps);
``$GEMINI_MAGICS_AGENT_STEP_SECONDS`` sets it (the pacing's seam: tests need no real waiting)."""
STEP_ENV_VAR = "GEMINI_MAGICS_AGENT_STEP_SECONDS"


def step_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(STEP_ENV_VAR, STEP_SECONDS)))
    except ValueError:
        return STEP_SECONDS


def is_agent(name: str) -> bool:
    return name.startswith("deep-research")


Planner = Callable[[str], list[str]]
"""The question → the research plan's steps (the scripted engine's fixed plan, or SmolLM2's)."""
Writer = Callable[[str, list[Any]], str]
"""The question and the pages read → the report's findings in Markdown (SmolLM2 writes them)."""


def fixed_plan(question: str) -> list[str]:
    return [f"Understand the question: {question[:120]}", "Search for recent, reliable sources",
            "Read the most relevant pages", "Write a report with its sources"]  # fmt: skip


def deep_research(
    out: StepWriter,
    request: EngineRequest,
    agent_config: dict[str, Any],
    *,
    planner: Planner = fixed_plan,
    writer: Writer | None = None,
) -> str:
    """Write the research steps and the report; the final status."""
    from .tools.web import URL_PATTERN, read_pages, search_offline

    confirmed = _confirmed_question(request.history)
    question = confirmed or request.last_user_text.strip() or "the question"
    out.record.add_usage(input_tokens=sum(len(str(b.get("text", "")).split()) or 1 for s in request.history
                                          for b in s.get("content", []) if isinstance(s.get("content"), list)))  # fmt: skip
    pause = step_seconds()
    summaries = agent_config.get("thinking_summaries", "auto") != "none"
    plan = planner(question)
    if agent_config.get("collaborative_planning") and confirmed is None:
        # human in the loop: the plan is the answer; research starts when the next turn confirms it
        if summaries:
            out.thought("Drafting a research plan to agree on first")
        out.text(PLAN_HEADING + "\n\n" + "\n".join(f"{n}. {step}" for n, step in enumerate(plan, 1))
                 + "\n\nReply to confirm the plan (or say what to change), continuing from this interaction.")
        return out.ending()
    if confirmed is not None and request.last_user_text.strip():
        plan.append(f"As agreed: {request.last_user_text.strip()[:120]}")
    if summaries:
        out.thought("Plan: " + "; ".join(plan))
    out.pace(pause)
    search_offline(out, question)
    out.pace(pause)
    pages = read_pages(out, request, question) if URL_PATTERN.search(question) else []
    out.pace(pause)
    if summaries:
        out.thought(f"Read {len(pages)} page(s); search is offline. Writing the report.")
    out.pace()
    findings = writer(question, pages) if writer is not None else None
    out.text(_report(question, pages, agent_config, findings))
    return out.ending()


PLAN_HEADING = "## Research plan"


def _confirmed_question(history: list[dict[str, Any]]) -> str | None:
    """With collaborative planning, the question whose plan the agent shared in the turn before this one
    (this turn confirms it); None when no plan waits for confirmation."""
    outputs = [s for s in history if s.get("type") == "model_output"]
    last = outputs[-1] if outputs else None
    texts = [b.get("text", "") for b in (last or {}).get("content", []) if b.get("type") == "text"]
    if not texts or not texts[0].startswith(PLAN_HEADING):
        return None
    asked = [b.get("text", "") for s in history if s.get("type") == "user_input"
             for b in s.get("content", []) if b.get("type") == "text"]  # fmt: skip
    return asked[-2].strip() if len(asked) >= 2 else None


def _report(
    question: str, pages: list[Any], agent_config: dict[str, Any], findings: str | None = None
) -> str:
    lines = [f"# Research report\n\n**Question:** {question}\n", "## Findings\n"]
    if findings:
        lines.append(findings.strip() + "\n")
    for page in pages:
        if page.status == "success":
            lines.append(f"- **{page.title or page.url}**: {' '.join(page.text.split())[:300]}")
        else:
            lines.append(f"- {page.url} could not be read ({page.error}).")
    if not pages and not findings:
        lines.append("- No page was named, and web search is not available offline: no findings.")
    if agent_config.get("visualization") == "auto":
        lines.append(
            "\n| source | status |\n|---|---|" + "".join(f"\n| {p.url} | {p.status} |" for p in pages)
        )
    lines.append("\n## Sources\n")
    lines += [f"{n}. [{p.title or p.url}]({p.url})" for n, p in enumerate(pages, 1)] or ["(none)"]
    return "\n".join(lines)
