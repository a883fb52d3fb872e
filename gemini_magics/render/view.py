"""The pure view model of a live answer: events in, display blocks out (no widgets, no I/O).

Blocks are keyed by step position so a renderer can update widgets in place. Both schema
generations arrive as the same typed steps (see ``_accumulate``), so one mapping covers both.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .._accumulate import InteractionAccumulator
from .._constants import LOCAL_NOTE_FIELD
from ..types import content as c
from ..types.events import InteractionEvent
from ..types.interaction import Interaction, Usage


@dataclass(frozen=True)
class Block:
    key: str
    kind: str
    """``markdown``, ``thought``, ``tool``, ``image``, ``audio``, ``media``, ``json`` or ``error``."""
    title: str = ""
    body: str = ""
    """Markdown (already safe: raw HTML escaped) or plain text, by kind; an image's: what drew it, when the
    local server drew a stand-in."""
    data: Any = None
    """Image bytes (``image``), a JSON value (``json``)."""
    mime_type: str | None = None
    call_id: str | None = None
    """A tool card's call: its result (a later step, or the kernel's run of it) lands in the same card."""
    state: str = ""
    """A tool card's state: ``called`` (no result yet), ``ok``, ``error`` or ``declined``."""


MARKS = {"called": "…", "ok": "✓", "error": "✗", "declined": "–"}
"""A tool card's state at a glance (text symbols every UI font has, not emoji)."""


def local_note(block: Any) -> str:
    """What the local server says it did for this block (``""`` for the API's own)."""
    return str((getattr(block, "model_extra", None) or {}).get(LOCAL_NOTE_FIELD) or "")


def _args(arguments: dict[str, Any]) -> str:
    """A call's arguments, short, for a card's title: ``city=Paris, days=3``."""
    return ", ".join(f"{k}={_compact(v, 30)}" for k, v in arguments.items())


_CODE = re.compile(r"(```.*?(?:```|$)|`[^`\n]*`)", re.DOTALL)


def escape_markdown_html(text: str) -> str:
    """Neutralise raw HTML in model Markdown; code spans and fences keep their text as is."""
    pieces = _CODE.split(text)
    return "".join(p if i % 2 else p.replace("&", "&amp;").replace("<", "&lt;") for i, p in enumerate(pieces))


def _compact(value: Any, limit: int = 80) -> str:
    """``value`` as at most ``limit`` characters, cut at a word's end (within the last fifth) with an ellipsis."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space >= limit * 4 // 5 else cut).rstrip(" ,;:") + "…"


def _argument(step: Any, name: str) -> list[str]:
    arguments = step.arguments if isinstance(step.arguments, dict) else {}
    return [str(v) for v in arguments.get(name, [])]


def _result_lines(step: Any, line: Callable[[dict[str, Any]], str]) -> list[str]:
    items = step.result if isinstance(step.result, list) else []
    return [line(item) for item in items if isinstance(item, dict)]


def _bullets(values: list[str]) -> str:
    return "\n".join(f"- {escape_markdown_html(v)}" for v in values)


def _fenced(value: Any, language: str = "json") -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, default=str)
    fence = "````" if "```" in text else "```"
    return f"{fence}{language}\n{text}\n{fence}"


def partial_json(text: str) -> Any:
    """The JSON value so far of a streaming answer (trailing strings kept), or None if none yet."""
    from pydantic_core import from_json

    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    if not stripped:
        return None
    try:
        return from_json(stripped, allow_partial="trailing-strings")
    except ValueError:
        return None


def tool_block(key: str, step: Any) -> Block:
    """A tool step as a card: a call (``…`` until its result joins it) or a result with no call to join."""
    title, body = _tool_text(step)
    if isinstance(step, c.FunctionCall | c.ToolCall):
        return Block(key, "tool", f"{MARKS['called']} {title}", body, call_id=step.id, state="called")
    failed = bool(getattr(step, "is_error", False))
    return Block(key, "tool", title, body, state="error" if failed else "ok")


_TITLED_RESULTS = (c.CodeExecutionResult, c.GoogleSearchResult, c.UrlContextResult, c.FileSearchResult)
"""Results whose own title says more in a card than their raw value would."""


def _tool_text(step: Any) -> tuple[str, str]:
    if isinstance(step, c.FunctionCall):
        return f"{step.name}({_args(step.arguments)})", _fenced(step.arguments)
    if isinstance(step, c.FunctionResult):
        flag = " (error)" if step.is_error else ""
        return f"function result · {step.name or step.call_id}{flag}: {_compact(step.result, 50)}", _fenced(step.result)
    if isinstance(step, c.CodeExecutionCall):
        code = step.arguments if isinstance(step.arguments, dict) else {}
        return "code execution", _fenced(code.get("code", ""), code.get("language", "python"))
    if isinstance(step, c.CodeExecutionResult):
        local = local_note(step)
        return "code output" + (" (error)" if step.is_error else "") + (f" · {local}" if local else ""), _fenced(step.result, "text")
    if isinstance(step, c.GoogleSearchCall):
        queries = _argument(step, "queries")
        return "search · " + "; ".join(queries), _bullets(queries)
    if isinstance(step, c.GoogleSearchResult):
        lines = _result_lines(step, lambda i: f"{i.get('title') or i.get('url') or i} — {i.get('url', '')}")
        return f"search results · {len(lines)}", _bullets(lines) or _fenced(step.result)
    if isinstance(step, c.FileSearchCall):
        queries = _argument(step, "queries")
        return "file search" + (" · " + "; ".join(queries) if queries else ""), _bullets(queries)
    if isinstance(step, c.FileSearchResult):
        lines = _result_lines(step, lambda i: f"{i.get('title') or i.get('file')}: {_compact(i.get('text', ''), 120)}")
        return f"passages · {len(lines)}", _bullets(lines) or _fenced(step.result)
    if isinstance(step, c.UrlContextCall):
        urls = _argument(step, "urls")
        return "read URLs · " + ", ".join(urls), _bullets(urls)
    if isinstance(step, c.UrlContextResult):
        lines = _result_lines(step, lambda i: f"{i.get('url')}: {i.get('status')}")
        return "URL results", _bullets(lines) or _fenced(step.result)
    payload = step.to_dict()
    payload.pop("type", None)
    name = getattr(step, "name", None) or getattr(step, "server_name", None)
    return step.type.replace("_", " ") + (f" · {name}" if name else ""), _fenced(payload)


def format_arguments(arguments: dict[str, Any]) -> str:
    """A call's arguments as Python would write them: ``city='Paris', days=3``."""
    return ", ".join(f"{k}={v!r}" for k, v in arguments.items())


def call_block(key: str, call: Any, *, timed: bool = True) -> Block:
    """The one card of a call the kernel ran (a ``tools.ToolCall``): call, decision, and its result or error,
    with (live) how long the call itself took."""
    state = "declined" if call.declined else ("error" if call.error is not None else "ok")
    bits = [f"{MARKS[state]} {call.name}({_args(call.arguments)})"]
    if call.declined:
        bits.append(str(call.decision))
    else:
        bits += [f"{call.seconds:.2f} s"] if timed else []
        bits += [call.decision] if call.decision else []
        bits.append(f"error: {_compact(call.error, 60)}" if call.error is not None else _compact(call.result, 50))
    result = {"error": call.error} if call.error is not None else call.result
    language = "json" if not isinstance(result, str) else "text"
    body = f"**arguments**\n\n{_fenced(call.arguments)}\n\n**{'result' if state == 'ok' else 'sent back'}**\n\n{_fenced(result, language)}"
    return Block(key, "tool", " · ".join(bits), body, call_id=call.call_id, state=state)


def with_calls(blocks: list[Block], calls: list[Any], prefix: str, *, timed: bool = True) -> list[Block]:
    """``blocks`` with each call the kernel ran in the card of the model's call (one card a call): by call id,
    else appended."""
    out = list(blocks)
    where = {b.call_id: n for n, b in enumerate(out) if b.call_id}
    for i, call in enumerate(calls):
        n = where.get(call.call_id) if call.call_id else None
        if n is None:
            out.append(call_block(f"{prefix}call.{i}", call, timed=timed))
        else:
            out[n] = call_block(out[n].key, call, timed=timed)
    return out


def _paired(blocks: list[Block], result: Block, call_id: str | None) -> bool:
    """A built-in tool's result joins its call's card (found by id); False when there is no such card."""
    for n, block in enumerate(blocks):
        if call_id and block.call_id == call_id and block.state == "called":
            state = "error" if result.state == "error" else "ok"
            title = f"{MARKS[state]} {block.title.removeprefix(MARKS['called'] + ' ')} → {result.title}"
            blocks[n] = replace(block, title=title, body=f"{block.body}\n\n{result.body}", state=state)
            return True
    return False


def blocks_of(interaction: Interaction, *, structured: bool = False, streaming: bool = False) -> list[Block]:
    """The display blocks of an interaction (or of the snapshot of one still streaming)."""
    blocks: list[Block] = []
    for i, step in enumerate(interaction.steps or []):
        if isinstance(step, c.UserInputStep):
            continue
        if isinstance(step, c.ModelOutputStep):
            blocks += _output_blocks(i, step, structured=structured, streaming=streaming)
        elif isinstance(step, c.Thought):
            blocks.append(Block(str(i), "thought", "Thoughts", escape_markdown_html(step.text)))
        else:
            block = tool_block(str(i), step)
            summary = block.title if isinstance(step, _TITLED_RESULTS) else _compact(getattr(step, "result", None) or "done", 50)
            if not _paired(blocks, replace(block, title=summary), getattr(step, "call_id", None)):
                blocks.append(block)
    for n, error in enumerate(interaction.errors or []):
        blocks.append(Block(f"error.{n}", "error", f"error {error.code or ''}".strip(), escape_markdown_html(error.message)))
    return blocks


def _output_blocks(i: int, step: c.ModelOutputStep, *, structured: bool, streaming: bool) -> list[Block]:
    """A model output step's blocks: text (or JSON), images, other media, and its error if it has one."""
    blocks: list[Block] = []
    for j, part in enumerate(step.content):
        key = f"{i}.{j}"
        if isinstance(part, c.TextContent):
            if structured:
                value = partial_json(part.text) if streaming else _loads(part.text)
                blocks.append(Block(key, "json", "structured output", part.text, value))
            else:
                blocks.append(Block(key, "markdown", "", footnoted(part.text, part.annotations or [])))
        elif isinstance(part, c.ImageContent) and part.data:
            try:
                data = base64.b64decode(part.data)
            except ValueError:  # a chunk boundary mid-stream
                continue
            blocks.append(Block(key, "image", "generated image", local_note(part), data, part.mime_type or "image/png"))
        elif isinstance(part, c.AudioContent | c.VideoContent) and part.data and not streaming:
            try:  # the local note: spoken or drawn on this machine
                blocks.append(Block(key, part.type, part.type, local_note(part), base64.b64decode(part.data), part.mime_type))
            except ValueError:
                continue
        elif isinstance(part, c.AudioContent | c.VideoContent) and part.data:  # still arriving: its size so far
            blocks.append(Block(key, "media", f"{part.type} · {part.mime_type or '?'} · receiving {len(part.data) * 3 // 4 // 1024} KB"))
        elif isinstance(part, c.ImageContent | c.AudioContent | c.VideoContent | c.DocumentContent):
            blocks.append(Block(key, "media", f"{part.type} · {part.mime_type or '?'}", part.uri or ""))
    if step.error:
        message = escape_markdown_html(str(step.error.get("message", step.error)))
        blocks.append(Block(f"{i}.error", "error", "the model reported an error", message))
    return blocks


CITATIONS = ("url_citation", "file_citation", "place_citation")


def footnoted(text: str, annotations: list[dict[str, Any]]) -> str:
    """The answer's text as safe Markdown, each cited passage marked ``[n]`` where it ends and its sources
    listed under it, numbered once per source (offsets are UTF-8 bytes, as the API gives them)."""
    cited = [a for a in annotations if a.get("type") in CITATIONS and isinstance(a.get("end_index"), int)]
    if not cited:
        return escape_markdown_html(text)
    raw = text.encode()
    numbers: dict[tuple[str, str], int] = {}
    marks: dict[int, list[int]] = {}
    for note in sorted(cited, key=lambda a: a["end_index"]):
        source = _source(note)
        n = numbers.setdefault(source, len(numbers) + 1)
        at = len(raw[: note["end_index"]].decode(errors="ignore"))
        if n not in marks.setdefault(at, []):
            marks[at].append(n)
    pieces, last = [], 0
    for at in sorted(marks):
        pieces += [text[last:at], "".join(f"[{n}]" for n in marks[at])]
        last = at
    body = escape_markdown_html("".join(pieces) + text[last:])
    listed = [f"{n}. {_source_link(*source)}" for source, n in numbers.items()]
    return body + "\n\n<sub>Sources</sub>\n\n" + "\n".join(listed)


def _source(note: dict[str, Any]) -> tuple[str, str]:
    """(title, link) of a citation: a page, a file (and its page), or a place."""
    if note.get("type") == "file_citation":
        page = f", page {note['page_number']}" if note.get("page_number") else ""
        return (f"{note.get('file_name') or note.get('document_uri') or 'a file'}{page}", note.get("document_uri") or "")
    url = str(note.get("url") or "")
    return (str(note.get("title") or note.get("name") or url or "a source"), url)


def _source_link(title: str, url: str) -> str:
    label = escape_markdown_html(title).replace("[", "\\[").replace("]", "\\]")
    if url.startswith(("https://", "http://")):
        return f"[{label}](<{url.replace('>', '%3E').replace(' ', '%20')}>)"
    return label + (f" ({escape_markdown_html(url)})" if url else "")


def _loads(text: str) -> Any:
    from ..output import strip_fences

    try:
        return json.loads(strip_fences(text))
    except ValueError:
        return partial_json(text)


class ViewModel:
    """What to show now: ``blocks()``, ``header()`` and ``footer()`` of the interaction so far.

    The interaction comes from a ``source`` (a stream's own snapshot, so events are folded once);
    without one the view model folds the events it is fed itself.
    """

    def __init__(
        self,
        *,
        model: str,
        structured: bool = False,
        chain: str | None = None,
        source: Callable[[], Interaction] | None = None,
    ) -> None:
        self.model = model
        self.structured = structured
        self.chain = chain
        self._accumulator: InteractionAccumulator | None = None
        self._source = source or self._own_fold()
        self._final: Interaction | None = None
        self.events_seen = 0
        self._round = 0
        self._earlier: list[Block] = []

    def _own_fold(self) -> Callable[[], Interaction]:
        self._accumulator = InteractionAccumulator()
        return self._accumulator.snapshot

    def follow(self, source: Callable[[], Interaction]) -> None:
        """Render from ``source`` (a stream's snapshot) instead of folding events again."""
        self._source = source
        self._accumulator = None

    def feed(self, event: InteractionEvent) -> None:
        self.events_seen += 1
        if self._accumulator is not None:
            self._accumulator.add(event)

    def finish(self, interaction: Interaction) -> None:
        self._final = interaction

    def next_round(self, calls: list[Any]) -> None:
        """A tool loop sent results back: keep this answer's blocks and the calls', then follow the next."""
        self._earlier = with_calls(self.blocks(), calls, f"r{self._round}.")
        self._round += 1
        self._final = None
        self.events_seen = 0
        self._source = self._own_fold()

    @property
    def interaction(self) -> Interaction:
        return self._final if self._final is not None else self._source()

    @property
    def has_content(self) -> bool:
        return self.events_seen > 0 and bool(self.interaction.steps)

    def blocks(self) -> list[Block]:
        """The earlier rounds' blocks (a tool loop), then the current answer's, keyed by round."""
        current = blocks_of(self.interaction, structured=self.structured, streaming=self._final is None)
        if not self._round:
            return current
        return self._earlier + [replace(b, key=f"r{self._round}.{b.key}") for b in current]

    def answering(self) -> str:
        """Who is answering: the model asked for until the server says what serves it, then both."""
        from ..answers import answered_by

        return answered_by(self.model, getattr(self.interaction, "served_by", None))

    def status_text(self, elapsed: float) -> str:
        """``in_progress · 1.2 s``: how far the answer is."""
        return f"{self.interaction.status or 'connecting'} · {elapsed:.1f} s"

    def header(self, elapsed: float) -> str:
        return f"{self.answering()} · {self.status_text(elapsed)}"

    def footer(self, elapsed: float) -> str:
        interaction = self.interaction
        bits = [getattr(interaction, "served_by", None) or self.model]  # what answered, once the server says
        usage = interaction.usage
        if usage is not None:
            bits.append(usage_line(usage))
        bits.append(f"{elapsed:.1f} s")
        if interaction.id:
            bits.append(interaction.id)
        if self.chain:
            bits.append(f"chain {self.chain}")
        return " · ".join(bits)


def progress_lines(interaction: Interaction, limit: int = 8) -> list[str]:
    """A run's steps so far as short lines (thought summaries, tool steps, the answer's length), newest last.

    What a background run's progress view lists while the answer itself is not there yet. Labels are words,
    not emoji: where no emoji font is installed those show as empty boxes.
    """
    lines: list[str] = []
    for block in blocks_of(interaction, streaming=True):
        if block.kind == "thought":
            first = " ".join(block.body.split())
            lines.append(f"Thought: {_compact(first, 160)}")
        elif block.kind == "tool":
            title = block.title[2:] if block.title[:2] in {f"{m} " for m in MARKS.values()} else block.title
            lines.append(f"Tool: {_compact(title, 160)}")
        elif block.kind == "markdown":
            lines.append(f"Answer: writing ({len(block.body.split())} words so far)")
        elif block.kind == "error":
            lines.append(f"Error: {_compact(block.body, 160)}")
        elif block.kind in ("image", "audio", "video", "media"):
            lines.append(f"{block.kind.capitalize()}: {block.title}")
    return lines[-limit:]


def usage_line(usage: Usage | None) -> str:
    """Token counts as the footer shows them: ``12 in / 40 out / 3 thought tokens``."""
    if usage is None:
        return ""
    parts = [f"{usage.total_input_tokens or 0} in", f"{usage.total_output_tokens or 0} out"]
    if usage.total_thought_tokens:
        parts.append(f"{usage.total_thought_tokens} thought")
    if usage.total_cached_tokens:
        parts.append(f"{usage.total_cached_tokens} cached")
    return " / ".join(parts) + " tokens"
