"""Agents on the local server: a Deep Research stand-in that really goes through a research plan.

``deep-research-*`` agents (the guide's ``deep-research-pro-preview-12-2025`` and today's
``deep-research-preview-04-2026`` / ``deep-research-max-preview-04-2026``) run a multi-step plan over
several seconds: thought summaries (unless ``agent_config.thinking_summaries`` is ``none``), a search
step (offline: it says so), a URL step that really fetches the loopback or allowed URLs the question
names, and a final Markdown report with a sources list. Cancellation stops it between steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engines.base import EngineRequest
    from .engines.scripted import StepWriter

AGENTS = (
    "deep-research-pro-preview-12-2025",
    "deep-research-preview-04-2026",
    "deep-research-max-preview-04-2026",
)
STEP_SECONDS = 0.8
"""The pause between the plan's steps (research takes a while; a Cancel lands between steps)."""


def is_agent(name: str) -> bool:
    return name.startswith("deep-research")


def deep_research(out: StepWriter, request: EngineRequest, agent_config: dict[str, Any]) -> str:
    """Write the research steps and the report; the final status."""
    from .engines.scripted import URL_PATTERN, read_pages, search_offline

    question = request.last_user_text.strip() or "the question"
    summaries = agent_config.get("thinking_summaries", "auto") != "none"
    plan = [f"Understand the question: {question[:120]}", "Search for recent, reliable sources",
            "Read the most relevant pages", "Write a report with its sources"]  # fmt: skip
    if agent_config.get("collaborative_planning"):
        plan.insert(0, "Share the plan before researching")
    if summaries:
        out.thought("Plan: " + "; ".join(plan))
    out.pace(STEP_SECONDS)
    search_offline(out, question)
    out.pace(STEP_SECONDS)
    pages = read_pages(out, question) if URL_PATTERN.search(question) else []
    out.pace(STEP_SECONDS)
    if summaries:
        out.thought(f"Read {len(pages)} page(s); search is offline. Writing the report.")
    out.text(_report(question, pages, agent_config))
    return out.ending()


def _report(question: str, pages: list[Any], agent_config: dict[str, Any]) -> str:
    lines = [f"# Research report\n\n**Question:** {question}\n", "## Findings\n"]
    for page in pages:
        if page.status == "success":
            lines.append(f"- **{page.title or page.url}**: {' '.join(page.text.split())[:300]}")
        else:
            lines.append(f"- {page.url} could not be read ({page.error}).")
    if not pages:
        lines.append("- No page was named, and web search is not available offline: no findings.")
    if agent_config.get("visualization") == "auto":
        lines.append(
            "\n| source | status |\n|---|---|" + "".join(f"\n| {p.url} | {p.status} |" for p in pages)
        )
    lines.append("\n## Sources\n")
    lines += [f"{n}. [{p.title or p.url}]({p.url})" for n, p in enumerate(pages, 1)] or ["(none)"]
    return "\n".join(lines)
