"""The scripted engine: deterministic answers that exercise every protocol feature.

It remembers the chain ("my name is X"), calls offered function tools named in the prompt with
arguments built from their schemas and answers from their results, returns schema-valid JSON, draws
PNGs, thinks out loud when asked, and stands in (offline, and says so) for the built-in tools.
Headers steer it per request: ``X-Scripted-Deltas``, ``X-Scripted-Delay-Ms`` (the server handles
``X-Scripted-Fail`` and ``X-Scripted-Cut-After``).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from ..tools.web import read_pages, search_offline
from ._schema_instance import instance_of
from .base import EngineRequest
from .writer import StepWriter

if TYPE_CHECKING:
    from ..store import Record

_NAME = re.compile(r"\bmy name is ([A-Z][\w-]*)", re.IGNORECASE)
_CODE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


_LONG_SIDE = {"512": 512, "1K": 1024, "2K": 2048, "4K": 4096}
_COUNTS = {"two": 2, "three": 3, "four": 4}
_SEVERAL = re.compile(
    r"\b([2-4]|two|three|four)\s+(?:\w+\s+)?(?:images|pictures|variations|versions)\b", re.IGNORECASE
)


def image_pixels(aspect_ratio: str | None, image_size: str | None) -> tuple[int, int]:
    """The drawn image's size: the long side from ``image_size`` (320 px by default), shaped by the ratio."""
    if aspect_ratio is None and image_size is None:
        return (320, 200)
    long_side = _LONG_SIDE.get(image_size or "", 320)
    w, h = (int(x) for x in (aspect_ratio or "1:1").split(":"))
    return (
        (long_side, max(1, round(long_side * h / w)))
        if w >= h
        else (max(1, round(long_side * w / h)), long_side)
    )


def _images_asked(prompt: str) -> int:
    match = _SEVERAL.search(prompt)
    if match is None:
        return 1
    word = match.group(1).lower()
    return _COUNTS.get(word) or int(word)


class Cited(str):
    """A part of an answer drawn from a page (or, ``store`` set, a file in a file search store): the text,
    and what it cites."""

    url: str
    page_title: str
    store: str

    def __new__(cls, text: str, url: str, page_title: str = "", store: str = "") -> Cited:
        cited = super().__new__(cls, text)
        cited.url, cited.page_title, cited.store = url, page_title, store
        return cited


def citations(parts: list[str], separator: str) -> list[dict[str, Any]]:
    """``url_citation`` annotations for the cited parts of ``separator.join(parts)`` (UTF-8 byte offsets, as
    the API measures them)."""
    found, offset = [], 0
    for part in parts:
        size = len(part.encode())
        if isinstance(part, Cited) and part.store:
            found.append({"type": "file_citation", "file_name": part.page_title, "document_uri": part.url,
                          "source": part.store, "start_index": offset, "end_index": offset + size})  # fmt: skip
        elif isinstance(part, Cited):
            found.append({"type": "url_citation", "url": part.url, "title": part.page_title or part.url,
                          "start_index": offset, "end_index": offset + size})  # fmt: skip
        offset += size + len(separator.encode())
    return found


STAND_IN = "a labelled stand-in drawn by the embedded local server (its scripted engine draws the prompt as text)"


class ScriptedEngine:
    """Decides what to answer; a per-request :class:`StepWriter` writes it (the engine is shared)."""

    name = "scripted"
    served_by = "local:scripted"
    default_max_tokens = 65536

    @property
    def description(self) -> str:
        return "scripted (deterministic test engine)"

    def quick(self, request: EngineRequest) -> bool:
        return request.plain_text and not request.continuation

    def run(self, request: EngineRequest, record: Record) -> str:
        out = StepWriter.for_request(record, request.headers)
        out.token_limit = request.generation_config.get("max_output_tokens") or self.default_max_tokens
        if request.is_agent:
            from ..agents import deep_research, is_agent

            if is_agent(request.model):
                return deep_research(out, request, request.agent_config)
        if request.headers.get("x-scripted-refusal"):  # a blocked generation, as the API ends one
            return out.refusal()
        if request.continuation is not None:  # the next part of an answer handed back in hops
            out.hops = request.continuation[1]
            out.text(request.continuation[0])
            return out.ending()
        prompt = request.last_user_text
        self._count_input(request, record)

        calls = self._functions_to_call(request, prompt)
        if calls:
            if (request.generation_config.get("thinking_level") or "minimal") != "minimal":
                out.thought(prompt)  # thought signatures must survive the tool loop
            for call in calls:
                out.function_call(call)
            return "requires_action"
        last = request.history[-1] if request.history else {}
        from_tools = [self._answer_from_result(request)] if last.get("type") == "function_result" else []
        from_tools += self._builtin_tools(out, request, prompt)
        if (request.generation_config.get("thinking_level") or "minimal") != "minimal":
            out.thought(prompt)
        if request.generation_config.get("transcription_config") or request.wants_audio():
            out.speech(request, prompt)
            return out.ending()
        shape = request.output_format("video")
        if shape is not None:
            return out.video(prompt, shape, request.first_image())
        if request.wants_image():
            for n in range(_images_asked(prompt)):
                out.image(f"{prompt} ({n + 1})" if n else prompt, image_pixels(*request.image_shape()),
                          request.image_mime(), stand_in=STAND_IN)
        schema = request.json_schema()
        if schema is not None:
            text = json.dumps(instance_of(schema, prompt), indent=None)
        elif from_tools:
            text = "\n\n".join(from_tools)
            out.text(text, annotations=citations(from_tools, "\n\n"))
            return out.ending()
        else:
            text = self._reply(request, prompt)
        out.text(text)
        return out.ending()

    # -- answers ---------------------------------------------------------------------------------

    def _reply(self, request: EngineRequest, prompt: str) -> str:
        lowered = prompt.lower()
        names = [m.group(1) for s in request.history if s.get("type") == "user_input"
                 for b in s.get("content", []) if b.get("type") == "text" for m in _NAME.finditer(b.get("text", ""))]  # fmt: skip
        if "what is my name" in lowered or "what's my name" in lowered:
            return f"Your name is {names[-1]}." if names else "You have not told me your name yet."
        if _NAME.search(prompt):
            return f"Nice to meet you, {names[-1]}!"
        turn = 1 + sum(1 for s in request.history[:-1] if s.get("type") == "model_output")
        attachments = [
            b for s in request.history[-1:] for b in s.get("content", []) if b.get("type") != "text"
        ]
        lines = [f"**Scripted reply** (turn {turn}) to: {prompt.strip()[:200] or '(no text)'}"]
        if request.system_instruction:
            lines.append(f"\n_System instruction:_ {request.system_instruction[:120]}")
        if attachments:
            lines.append("\nAttached: " + ", ".join(request.describe_part(b)[:80] for b in attachments))
        if "table" in lowered:
            lines.append("\n| item | value |\n|---|---|\n| alpha | 1 |\n| beta | 2 |")
        if "code" in lowered:
            lines.append("\n```python\nprint('hello from the scripted engine')\n```")
        if "list" in lowered:
            lines.append("\n- first point\n- second point\n- third point")
        return "\n".join(lines)

    def _answer_from_result(self, request: EngineRequest) -> str:
        results = []
        for step in reversed(request.history):
            if step.get("type") != "function_result":
                break
            results.append(step)
        parts = [
            f"`{r.get('name') or 'the function'}` returned {json.dumps(r.get('result'))}"
            for r in reversed(results)
        ]
        return "From the tool results: " + "; ".join(parts) + "."

    def _functions_to_call(self, request: EngineRequest, prompt: str) -> list[dict[str, Any]]:
        """Every offered function the prompt names (in the prompt's order), for as many rounds as asked.

        ``X-Scripted-Tool-Rounds: N`` (default 1) keeps calling for N rounds of results.
        """
        rounds = int(request.headers.get("x-scripted-tool-rounds", "1") or 1)
        done = 0
        for step in reversed(request.history):
            if step.get("type") == "user_input":
                break
            done += step.get("type") == "function_call"
        named = [
            t for t in request.tools if t.get("type") == "function" and t.get("name") and t["name"] in prompt
        ]
        if not named or done >= rounds * len(named):
            return []
        named.sort(key=lambda t: prompt.index(t["name"]))
        calls = []
        for tool in named:
            args = instance_of(tool.get("parameters") or {"type": "object", "properties": {}}, prompt)
            calls.append({"name": tool["name"], "arguments": args if isinstance(args, dict) else {}})
        return calls

    def _count_input(self, request: EngineRequest, record: Record) -> None:
        """Input tokens by modality (a word a token, a media part 258), the chain before this input counted
        as cached too (what the API's implicit caching reports for a continued chain)."""
        counts: dict[tuple[str, bool], int] = {("text", False): len((request.system_instruction or "").split())}
        last_input = max((i for i, s in enumerate(request.history) if s.get("type") == "user_input"), default=0)
        for position, step in enumerate(request.history):
            for block in step.get("content", []) if isinstance(step.get("content"), list) else []:
                kind = str(block.get("type", "text"))
                modality = kind if kind in ("image", "audio", "video", "document") else "text"
                tokens = 258 if modality != "text" else len(str(block.get("text", "")).split()) or 1
                key = (modality, position < last_input)
                counts[key] = counts.get(key, 0) + tokens
        for (modality, cached), tokens in counts.items():
            record.add_usage(input_tokens=tokens, cached_tokens=tokens if cached else 0, modality=modality)

    def _builtin_tools(self, out: StepWriter, request: EngineRequest, prompt: str) -> list[str]:
        """Run the built-in tools offered; what each found, for the answer."""
        kinds = {t.get("type") for t in request.tools}
        found: list[str] = []
        if "code_execution" in kinds:
            found.append(self._code_execution(out, request, prompt))
        if "google_search" in kinds:
            found.append(f"Google Search is not available offline ({search_offline(out, prompt)}).")
        for declaration in (t for t in request.tools if t.get("type") == "mcp_server"):
            found += self._mcp_server(out, request, declaration, prompt)
        for declaration in (t for t in request.tools if t.get("type") == "file_search"):
            found += self._file_search(out, request, declaration, prompt)
        for kind in ("google_maps", "retrieval"):
            if kind in kinds:
                found.append(f"{kind.replace('_', ' ').capitalize()} is not available offline (the local server "
                             "has no such service).")  # fmt: skip
        if "url_context" in kinds:
            for page in read_pages(out, request, prompt):
                found.append(Cited(f"{page.title or 'untitled'}: {page.text[:300]}", page.url, page.title)
                             if page.status == "success" else f"{page.url} could not be read: {page.error}")  # fmt: skip
        return found

    @staticmethod
    def _file_search(out: StepWriter, request: EngineRequest, declaration: dict[str, Any], prompt: str) -> list[str]:
        """Search the named stores (FTS5 on this machine) for the prompt; each passage found, cited."""
        stores = [str(s) for s in declaration.get("file_search_store_names") or []]
        passages = request.search_files(stores, prompt, int(declaration.get("top_k") or 5))
        results = [{"title": p.title, "text": p.text[:300], "file": p.file, "store": p.store} for p in passages]
        out.tool_pair("file_search", {"queries": [prompt.strip()[:200]], "file_search_store_names": stores}, results,
                      local_note=f"searched on this machine: SQLite FTS5 (BM25) over {len(stores)} store(s)")  # fmt: skip
        if not passages:
            return [f"No passage in {', '.join(stores) or 'the stores'} matches the question."]
        return [Cited(f"{p.title}: {' '.join(p.text.split())[:300]}", p.file, p.title, p.store) for p in passages]

    def _code_execution(self, out: StepWriter, request: EngineRequest, prompt: str) -> str:
        """Run the prompt's fenced Python, if the user turned code execution on; what to say of it."""
        from ..tools.code_execution import DISABLED, run_python

        fenced = _CODE.search(prompt)
        code = fenced.group(1).strip() if fenced else f"print({prompt.strip()[:200]!r})"
        if not request.policy.code_execution:
            out.tool_pair("code_execution", {"code": code, "language": "python"}, DISABLED, is_error=True,
                          local_note="not run: code execution is off on the embedded server")  # fmt: skip
            return DISABLED
        ran = run_python(code)
        out.tool_pair("code_execution", {"code": code, "language": "python"}, ran.output, is_error=ran.is_error,
                      local_note=ran.note)  # fmt: skip
        said = "The code failed:\n" if ran.is_error else "The code printed:\n"
        return said + f"```\n{ran.output.strip()}\n```"

    def _mcp_server(
        self, out: StepWriter, request: EngineRequest, declaration: dict[str, Any], prompt: str
    ) -> list[str]:
        """Call the declared MCP server's tools the prompt names, for real; their steps, and what they said."""
        from ..tools.mcp_client import McpCall, dialable, use_server

        server = str(declaration.get("name") or declaration.get("url"))
        url = str(declaration.get("url", ""))
        if not dialable(url, request.mcp_hosts):
            return [
                f"The MCP server {server} at {url} is not reachable from the local server (loopback only)."
            ]

        def choose(tools: list[Any]) -> list[McpCall]:
            named = sorted((t for t in tools if t.name in prompt), key=lambda t: prompt.index(t.name))
            return [
                McpCall(t.name, instance_of(dict(t.input_schema or {"type": "object"}), prompt))
                for t in named
            ]

        try:
            _tools, calls = use_server(declaration, choose)
        except Exception as exc:  # the MCP server is down or refuses: say so, as the API would
            return [f"The MCP server {server} could not be used: {type(exc).__name__}: {exc}"]
        for n, call in enumerate(calls):
            call_id = f"mcp_{len(out.record.steps)}_{n}"
            out.step({"type": "mcp_server_tool_call", "id": call_id, "name": call.name, "server_name": server,
                      "arguments": call.arguments})  # fmt: skip
            out.step({"type": "mcp_server_tool_result", "call_id": call_id, "name": call.name, "server_name": server,
                      "result": call.result, "is_error": call.is_error})  # fmt: skip
        return [
            f"`{c.name}` on {server} {'failed' if c.is_error else 'returned'} {json.dumps(c.result)}"
            for c in calls
        ]


_FAIL_MARK = re.compile(r"\[fail (\d{3})\]")


def failing_status(value: Any) -> int | None:
    """The scripted per-input fault: an input saying ``[fail 500]`` is answered with that status, every
    time (a row that keeps failing on the server, whatever the retries); None for any other input."""
    match = _FAIL_MARK.search(json.dumps(value, default=str))
    return int(match.group(1)) if match else None
