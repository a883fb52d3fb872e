"""Tools from a cell: function declarations from Python callables, and running the calls a model makes.

A callable becomes a ``function`` tool: its parameters' JSON schema comes from pydantic (a model built
from the signature's type hints and defaults), its descriptions from the docstring (Google or NumPy
style). A call is validated against that model, run (async functions awaited, others in a thread,
each with a time limit), and its result converted the way ``{{references}}`` are, so a DataFrame or an
image goes back to the model as a table or an image, never a ``json.dumps`` crash. A function that
raises does not end the cell: the model gets the error as the result. No IPython, no HTTP here.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import OptionError

__all__ = [
    "BUILTIN_TOOLS",
    "FunctionTool",
    "ToolCall",
    "Toolbox",
    "tool",
    "function_tool",
    "resolve_tools",
    "mcp_tools",
]

BUILTIN_TOOLS = ("google_search", "code_execution", "url_context", "file_search", "google_maps", "retrieval")
"""The API's own tools, passed through by name; ``file_search:STORE+STORE`` names the stores to search."""


@dataclass(frozen=True)
class ToolOptions:
    """What :func:`tool` attaches to a function."""

    confirm: bool = False
    description: str | None = None
    name: str | None = None


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    confirm: bool = False,
    description: str | None = None,
    name: str | None = None,
) -> Any:
    """Mark a function for ``--tools``: ``@tool(confirm=True)`` asks before each call runs (Approve / Deny);
    ``description=`` replaces the docstring's summary; ``name=`` the name the model sees."""

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        function.__gemini_tool__ = ToolOptions(confirm, description, name)  # type: ignore[attr-defined]
        return function

    return mark(fn) if fn is not None else mark


@dataclass
class FunctionTool:
    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    arguments_model: Any
    """The pydantic model the arguments are validated with (None: checked against ``parameters``)."""
    confirm: bool = False
    source: str = "kernel"
    """``kernel`` for a Python function, else the MCP server that runs the tool."""

    def bind(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The call's keyword arguments, validated (a pydantic or a JSON-schema error if they are wrong)."""
        if self.arguments_model is None:
            import jsonschema

            jsonschema.validate(arguments, self.parameters)
            return dict(arguments)
        validated = self.arguments_model.model_validate(arguments)
        return {name: getattr(validated, name) for name in type(validated).model_fields}

    def declaration(self) -> dict[str, Any]:
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }


@dataclass
class ToolCall:
    """One call of one step of the loop: what the model asked, and what came back."""

    name: str
    arguments: dict[str, Any]
    call_id: str | None = None
    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    step: int = 1
    source: str = "kernel"
    """``kernel`` (a local function), or the MCP server's name for bridged tools."""
    decision: str | None = None
    """For a ``confirm=True`` tool: ``approved by you``, ``denied by you``, ``stopped before approval``, or
    why nobody could be asked. ``seconds`` is the call's own time, never the time the decision took."""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def declined(self) -> bool:
        """Not run because nobody approved it (denied, stopped before approval, or nobody to ask)."""
        return self.decision not in (None, "approved by you")

    def as_step(self) -> dict[str, Any]:
        """The ``function_result`` step sent back to the model."""
        step: dict[str, Any] = {"type": "function_result", "name": self.name, "call_id": self.call_id}
        step["result"] = {"error": self.error} if self.error is not None else self.result
        if self.error is not None:
            step["is_error"] = True
        return step


# -- declarations -----------------------------------------------------------------------------------


def function_tool(fn: Callable[..., Any]) -> FunctionTool:
    """The declaration of a callable, from its signature, type hints and docstring (via pydantic)."""
    import typing

    from pydantic import Field, create_model

    options: ToolOptions = getattr(fn, "__gemini_tool__", ToolOptions())
    name = str(options.name or getattr(fn, "__name__", type(fn).__name__))
    summary, described = parse_docstring(inspect.getdoc(fn) or "")
    signature = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # hints that cannot be resolved (a forward reference): the annotations as given
        hints = {}
    fields: dict[str, Any] = {}
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        hint = hints.get(parameter.name, parameter.annotation)
        hint = Any if hint is inspect.Parameter.empty else hint
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[parameter.name] = (hint, Field(default, description=described.get(parameter.name)))
    model = create_model(f"{name}_arguments", **fields)
    return FunctionTool(name, str(options.description or summary or name), clean_schema(model.model_json_schema()), fn,
                        model, options.confirm)  # fmt: skip


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params)\s*:?\s*$", re.IGNORECASE)
_ENDS = re.compile(
    r"^(Returns?|Yields?|Raises?|Examples?|Notes?|See Also|Attributes|Other Parameters)\s*:?\s*$",
    re.IGNORECASE,
)
_GOOGLE_ARG = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ARG = re.compile(r"^\*{0,2}(\w+)\s*(?::.*)?$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary paragraph and per-argument descriptions of a Google- or NumPy-style docstring."""
    lines = doc.expandtabs().splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line.strip()):
            break
        summary.append(line.strip())
    start = next((i for i, line in enumerate(lines) if _SECTION.match(line.strip())), None)
    if start is None:
        return " ".join(summary), {}
    body = lines[start + 1 :]
    numpy = bool(body) and bool(body[0].strip()) and set(body[0].strip()) == {"-"}
    return " ".join(summary), _arguments(body[1:] if numpy else body, _NUMPY_ARG if numpy else _GOOGLE_ARG)


def _arguments(lines: list[str], pattern: re.Pattern[str]) -> dict[str, str]:
    """``name ...`` lines at the section's indent, each followed by more-indented description lines."""
    described: dict[str, list[str]] = {}
    indent: int | None = None
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        here = len(line) - len(line.lstrip())
        if _ENDS.match(stripped) or (indent is not None and here < indent):
            break
        indent = here if indent is None else indent
        match = pattern.match(stripped) if here == indent else None
        if match:
            current = match.group(1)
            described[current] = [match.group(2)] if pattern is _GOOGLE_ARG and match.group(2) else []
        elif current is not None:
            described[current].append(stripped)
    return {name: " ".join(words) for name, words in described.items() if words}


def clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with ``$ref``s inlined and pydantic's ``title``s dropped (what the API takes best)."""
    definitions = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                siblings = {k: v for k, v in node.items() if k != "$ref"}
                return {**walk(definitions[ref.split("/")[-1]]), **walk(siblings)}
            return {k: walk(v) for k, v in node.items() if k not in ("title", "$defs")}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    cleaned: dict[str, Any] = walk(schema)
    return cleaned


def mcp_tools(bridge: Any, info: Any, allowed: tuple[str, ...] = ()) -> list[FunctionTool]:
    """A bridged MCP server's tools (``allowed`` only, if given) as function tools the loop runs."""
    tools = []
    for tool in info.tools:
        if allowed and tool.name not in allowed:
            continue

        def call(_target: str = info.target, _name: str = tool.name, **arguments: Any) -> Any:
            return bridge.call(_target, _name, arguments)

        schema = clean_schema(dict(tool.input_schema or {"type": "object", "properties": {}}))
        tools.append(
            FunctionTool(tool.name, tool.description or tool.name, schema, call, None, source=info.name)
        )
    return tools


def resolve_tools(names: list[str], namespace: Mapping[str, Any]) -> tuple[list[FunctionTool], list[str]]:
    """``--tools a,b,code_execution`` as function tools from the kernel and built-in tool names."""
    functions: list[FunctionTool] = []
    builtins: list[str] = []
    for name in names:
        if name.partition(":")[0] in BUILTIN_TOOLS:
            builtin_declaration(name)  # a malformed one fails here, before anything is sent
            builtins.append(name)
        elif name not in namespace:
            raise OptionError(
                f"--tools {name}: no such function in the kernel (define it, or use a built-in: {', '.join(BUILTIN_TOOLS)})"
            )
        elif not callable(namespace[name]):
            raise OptionError(f"--tools {name}: expected a function, got {type(namespace[name]).__name__}")
        else:
            try:
                functions.append(function_tool(namespace[name]))
            except Exception as exc:  # an annotation pydantic cannot describe
                raise OptionError(f"--tools {name}: cannot describe its parameters ({exc})") from None
    return functions, builtins


def builtin_declaration(name: str) -> dict[str, Any]:
    """A built-in tool as the API declares it: ``file_search:a+b`` → its ``file_search_store_names``."""
    kind, _, stores = name.partition(":")
    if stores and kind != "file_search":
        raise OptionError(f"--tools {name}: only file_search takes names (file_search:STORE+STORE)")
    if kind != "file_search":
        return {"type": kind}
    names = [s.strip() for s in stores.split("+") if s.strip()]
    if not names:
        raise OptionError("--tools file_search needs the stores to search: file_search:STORE (several: A+B)")
    return {"type": kind, "file_search_store_names": [n if n.startswith("fileSearchStores/") else f"fileSearchStores/{n}" for n in names]}


# -- running calls ----------------------------------------------------------------------------------


Approver = Callable[[ToolCall], "asyncio.Future[bool | str] | bool | str"]
"""Asks whether a ``confirm=True`` call may run: a bool (or an awaitable of one), or why it cannot ask."""


@dataclass
class Toolbox:
    """The tools of one cell, and the running of the calls a model makes."""

    functions: list[FunctionTool]
    builtins: list[str] = field(default_factory=list)
    timeout: float = 30.0
    namespace_options: Any = None
    """``inputs.Options`` for converting results that are not JSON (tables, images)."""

    def declarations(self) -> list[dict[str, Any]]:
        return [f.declaration() for f in self.functions] + [builtin_declaration(name) for name in self.builtins]

    def find(self, name: str) -> FunctionTool | None:
        return next((f for f in self.functions if f.name == name), None)

    async def run_all(self, calls: list[ToolCall], approve: Approver | None = None) -> list[ToolCall]:
        """Run one step's calls concurrently; every call ends with a result or an error, never raises."""
        await asyncio.gather(*(self.run(call, approve) for call in calls))
        return calls

    async def run(self, call: ToolCall, approve: Approver | None = None) -> ToolCall:
        tool = self.find(call.name)
        started = time.monotonic()
        try:
            if tool is None:
                raise LookupError(f"no tool named {call.name!r} was offered")
            call.source = tool.source
            kwargs = tool.bind(call.arguments)
            if tool.confirm:
                decision = await _approved(call, approve)
                call.decision = "approved by you" if decision is True else (decision or "denied by you")
                if decision is not True:
                    call.error = f"not run: {call.decision}"  # what the model reads back
                    return call
                started = time.monotonic()  # the call's own time starts now, not when the question was asked
            value = await asyncio.wait_for(_invoke(tool.function, kwargs), self.timeout)
            call.result = self.convert(value, call.name)
        except asyncio.TimeoutError:
            call.error = f"TimeoutError: no result within {self.timeout:g} s"
        except Exception as exc:  # the model gets the error as the result; the cell goes on
            call.error = _describe(exc)
        finally:
            call.seconds = 0.0 if call.declined else time.monotonic() - started
        return call

    def convert(self, value: Any, label: str = "result") -> Any:
        """A result as the API takes it: JSON as is, anything else as ``{{reference}}`` parts would be."""
        dump = getattr(value, "model_dump", None)
        if callable(dump) and not isinstance(value, type):
            return dump(mode="json")
        if _is_json(value):
            return value
        from .inputs import Options, object_parts

        parts = [
            p
            for p in object_parts(value, label, self.namespace_options or Options())
            if isinstance(p, dict)  # files past the inline limit are not sent back as a tool's result
        ]
        if all(p.get("type") == "text" for p in parts):
            return "".join(p["text"] for p in parts)
        return parts


async def _invoke(function: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    if inspect.iscoroutinefunction(function):
        return await function(**kwargs)
    from ._threads import in_thread

    value = await in_thread(lambda: function(**kwargs))
    return await value if inspect.isawaitable(value) else value


APPROVAL_TIMEOUT = 300.0
"""Seconds a ``confirm=True`` call waits for Approve / Deny before it counts as denied."""


async def _approved(call: ToolCall, approve: Approver | None) -> bool | str:
    """True to run the call; False (denied) or a reason why nobody could be asked."""
    if approve is None:
        return "no way to ask for approval here"
    answer = approve(call)
    if inspect.isawaitable(answer):
        try:
            answer = await asyncio.wait_for(answer, APPROVAL_TIMEOUT)
        except asyncio.TimeoutError:
            return f"nobody approved the call within {APPROVAL_TIMEOUT:g} s"
    return answer if isinstance(answer, str) else bool(answer)


def _describe(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "arguments"
        return f"invalid arguments: {where}: {first['msg']}"
    if type(exc).__name__ == "ValidationError" and type(exc).__module__.startswith("jsonschema"):
        path = ".".join(str(p) for p in getattr(exc, "path", [])) or "arguments"
        return f"invalid arguments: {path}: {getattr(exc, 'message', exc)}"
    return f"{type(exc).__name__}: {exc}"


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


# -- the loop ---------------------------------------------------------------------------------------


@dataclass
class Transcript:
    """A turn that may span several interactions: each answer, and the results sent back between them."""

    interactions: list[Any] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    """Model steps (thought signatures included) and function results, in order: a stateless history."""
    calls: list[ToolCall] = field(default_factory=list)

    def add(self, interaction: Any) -> None:
        self.interactions.append(interaction)
        self.steps += [s.to_dict() for s in interaction.steps or [] if _sent_back(s)]


def _sent_back(step: Any) -> bool:
    """Whether a step of an answer goes back in a stateless history: not the input, and not a thought
    without its signature (the API refuses one; a summary alone carries nothing the model needs)."""
    kind = getattr(step, "type", None)
    return kind != "user_input" and not (kind == "thought" and not getattr(step, "signature", None))


class ToolLoopCapped(Exception):
    """The model still asked for tools after ``--max-steps`` rounds."""

    def __init__(self, max_steps: int, transcript: Transcript) -> None:
        super().__init__(max_steps)
        self.max_steps = max_steps
        self.transcript = transcript


async def tool_loop(
    body: dict[str, Any],
    *,
    send: Callable[[dict[str, Any]], Any],
    toolbox: Toolbox,
    max_steps: int,
    approve: Approver | None = None,
    on_results: Callable[[list[ToolCall]], None] = lambda calls: None,
    transcript: Transcript | None = None,
) -> Transcript:
    """Send, run the function calls the answer asks for, send their results back; until an answer has none.

    With a stored interaction the results continue it through ``previous_interaction_id``; with
    ``store=false`` the whole history (input, model steps with their thought signatures, results) is
    sent again, as the API's client-side-state form requires.
    """
    transcript = transcript if transcript is not None else Transcript()  # the caller's, to keep on a stop
    first_input = _as_steps(body.get("input"))
    params = {k: v for k, v in body.items() if k not in ("input", "previous_interaction_id")}
    for step in range(1, max_steps + 1):
        interaction = await send(body)
        transcript.add(interaction)
        asked = interaction.function_calls if toolbox.functions else []
        if not asked or interaction.status not in ("requires_action", "completed"):
            return transcript
        calls = [ToolCall(c.name, dict(c.arguments or {}), c.id, step=step) for c in asked]
        await toolbox.run_all(calls, approve)
        on_results(calls)
        transcript.calls += calls
        results = [c.as_step() for c in calls]
        transcript.steps += results
        if body.get("store", True) is False:
            body = {**params, "input": first_input + transcript.steps}
        else:
            body = {**params, "previous_interaction_id": interaction.id, "input": results}
    raise ToolLoopCapped(max_steps, transcript)


def _is_step(value: Any) -> bool:
    kind = value.get("type", "") if isinstance(value, dict) else ""
    return kind in ("user_input", "model_output", "thought") or kind.endswith(("_call", "_result"))


def _as_steps(value: Any) -> list[dict[str, Any]]:
    """A create body's ``input`` as steps (a string or bare content becomes one ``user_input``)."""
    if isinstance(value, str):
        return [{"type": "user_input", "content": [{"type": "text", "text": value}]}]
    if isinstance(value, list) and value and all(_is_step(v) for v in value):
        return list(value)
    return [{"type": "user_input", "content": list(value or [])}]
