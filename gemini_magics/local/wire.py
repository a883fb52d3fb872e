"""Wire-format helpers of the local server: request checks, input normalisation, legacy translation."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, field_validator

from ..types.content import Content, Step
from ..types.interaction import GenerationConfig, outputs_from_steps, steps_from_outputs

STEPS_REVISION = "2026-05-20"
STEP_TYPES = frozenset({
    "user_input", "model_output", "thought", "function_call", "function_result", "code_execution_call",
    "code_execution_result", "google_search_call", "google_search_result", "url_context_call",
    "url_context_result", "mcp_server_tool_call", "mcp_server_tool_result", "file_search_call",
    "file_search_result", "google_maps_call", "google_maps_result", "retrieval_call", "retrieval_result",
    "tool_search_call", "tool_search_result", "processing_call", "processing_result",
})  # fmt: skip
_STEPS: TypeAdapter[list[Step]] = TypeAdapter(list[Step])
_CONTENTS: TypeAdapter[list[Content]] = TypeAdapter(list[Content])


ERROR_CODES = {
    400: "invalid_request", 401: "authentication", 402: "payment_required", 403: "permission_denied",
    404: "not_found", 408: "deadline_exceeded", 409: "already_exists", 413: "invalid_request",
    416: "out_of_range", 429: "rate_limit_exceeded", 499: "cancelled", 500: "api_error",
    501: "unimplemented", 503: "unavailable", 504: "deadline_exceeded",
}
"""The Interactions API's documented ``error.code`` for each HTTP status (its api-errors page); a status can
carry a more specific one (404 ``model_not_found``, 429 ``quota_exceeded``, 400 ``parameter_unknown``)."""

CREATE_FIELDS = frozenset({
    "model", "agent", "agent_config", "background", "cached_content", "continuation_token", "environment",
    "generation_config", "input", "labels", "previous_interaction_id", "response_format", "response_mime_type",
    "response_modalities", "safety_settings", "service_tier", "store", "stream", "system_instruction", "tools",
    "webhook_config",
})
"""The create body's fields in google-genai 3.6.1 (``CreateModelInteraction`` and ``CreateAgentInteraction``):
any other is a 400 ``parameter_unknown``, as the API answers."""


def code_for(status: int) -> str:
    return ERROR_CODES.get(status, "api_error" if status >= 500 else "invalid_request")


class RequestError(Exception):
    """Turned into an ``{"error": {"code", "message"}}`` response with ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def int_param(value: str | None, name: str, default: int, *, minimum: int = 0) -> int:
    """A whole-number query parameter or header; a malformed one is a JSON 400 naming it, never a 500."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise RequestError(400, "invalid_request", f"{name} must be a whole number, not {value[:40]!r}") from None
    if number < minimum:
        raise RequestError(400, "invalid_request", f"{name} must be at least {minimum}, not {number}")
    return number


class CreateRequest(BaseModel):
    """What the server checks in a create body (fields it does not know are refused before this)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str | None = None
    agent: str | None = None
    input: str | dict[str, Any] | list[Any] | None = None
    system_instruction: str | None = None
    tools: list[dict[str, Any]] | None = None
    generation_config: GenerationConfig | None = None
    response_format: dict[str, Any] | list[Any] | None = None
    response_mime_type: str | None = None
    response_modalities: list[str] | None = None
    previous_interaction_id: str | None = None
    continuation_token: str | None = None
    stream: bool = False
    background: bool = False
    store: bool = True
    agent_config: dict[str, Any] | None = None

    @field_validator("tools")
    @classmethod
    def _tools_have_types(cls, tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for tool in tools or []:
            if not isinstance(tool.get("type"), str):
                raise ValueError("every tool needs a string 'type'")
            if tool["type"] == "function" and not tool.get("name"):
                raise ValueError("a function tool needs a 'name'")
        return tools


def parse_create(body: Any) -> CreateRequest:
    if not isinstance(body, dict):
        raise RequestError(400, "invalid_request", "the request body must be a JSON object")
    unknown = sorted(set(body) - CREATE_FIELDS)
    if unknown:
        raise RequestError(400, "parameter_unknown", f"unknown parameter{'s' if len(unknown) > 1 else ''}: "
                           + ", ".join(repr(name) for name in unknown[:5]))  # fmt: skip
    try:
        request = CreateRequest.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise RequestError(
            400, "invalid_request", f"invalid value for field '{field}': {err['msg']}"
        ) from None
    if request.model and request.agent:
        raise RequestError(400, "invalid_request", "give either 'model' or 'agent', not both")
    if not request.model and not request.agent:
        raise RequestError(400, "invalid_request", "missing field 'model' (or 'agent')")
    if request.input is None and not request.previous_interaction_id:
        raise RequestError(400, "invalid_request", "missing field 'input'")
    for item in request.response_format if isinstance(request.response_format, list) else [request.response_format]:
        kind = item.get("mime_type") if isinstance(item, dict) and item.get("type") == "image" else None
        if kind not in (None, "image/jpeg"):
            raise RequestError(400, "invalid_request", f"response_format: an image's mime_type must be 'image/jpeg', not {kind!r}")
    if request.background and not request.store:
        raise RequestError(400, "invalid_request", "background=true requires store=true")
    return request


def check_turn(before: list[dict[str, Any]], sent: list[dict[str, Any]], signed_calls: Mapping[str, str]) -> None:
    """What the API refuses in a turn's input, given the chain ``before`` it (a 400 ``invalid_request``):
    a thought sent back without its signature; a function call the model made after a thought, sent back
    without that thought's signature; a function result that answers no call waiting for one."""
    waiting = [s for s in before if s.get("type") == "function_call"]
    for step in before:
        if step.get("type") == "function_result":
            _answer(waiting, step)
    signatures = set()
    for position, step in enumerate(sent):
        kind = step.get("type")
        if kind == "thought":
            if not step.get("signature"):
                raise RequestError(400, "invalid_request", f"input step {position}: a thought sent back without its "
                                   "signature; send thoughts back whole, or leave them out")  # fmt: skip
            signatures.add(step["signature"])
        elif kind == "function_call":
            needed = signed_calls.get(str(step.get("id")))
            if needed is not None and needed not in signatures:
                raise RequestError(400, "invalid_request", f"input step {position}: function_call {step.get('name')} "
                                   "is sent back without the thought signature that came with it")  # fmt: skip
            waiting.append(step)
        elif kind == "function_result" and not _answer(waiting, step):
            raise RequestError(400, "invalid_request", f"input step {position}: function_result for "
                               f"{step.get('call_id') or step.get('name')!s} answers no function_call waiting for one")  # fmt: skip


def signed_calls_of(steps: list[dict[str, Any]]) -> dict[str, str]:
    """The function calls an answer made after a signed thought, and that thought's signature."""
    signed: dict[str, str] = {}
    signature = None
    for step in steps:
        if step.get("type") == "thought" and step.get("signature"):
            signature = step["signature"]
        elif step.get("type") == "function_call" and signature and step.get("id"):
            signed[str(step["id"])] = signature
    return signed


def _answer(waiting: list[dict[str, Any]], result: dict[str, Any]) -> bool:
    """Take the call ``result`` answers off ``waiting`` (by id, or by name when it has none)."""
    call_id = result.get("call_id")
    for i, call in enumerate(waiting):
        if (call.get("id") == call_id) if call_id else (call.get("name") == result.get("name")):
            del waiting[i]
            return True
    return False


def _content_block(block: Any, where: str) -> dict[str, Any]:
    if isinstance(block, str):
        return {"type": "text", "text": block}
    if not isinstance(block, dict):
        raise RequestError(400, "invalid_request", f"invalid content in '{where}': expected an object")
    if "type" not in block and "text" in block:
        return {"type": "text", **block}
    if not isinstance(block.get("type"), str):
        raise RequestError(400, "invalid_request", f"invalid content in '{where}': missing 'type'")
    return block


def normalize_input(value: Any) -> list[dict[str, Any]]:
    """Any accepted ``input`` form as a list of steps: string, content, content list, turns, steps."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "user_input", "content": [{"type": "text", "text": value}]}]
    if isinstance(value, dict):
        return [{"type": "user_input", "content": [_content_block(value, "input")]}]
    if not isinstance(value, list):
        raise RequestError(400, "invalid_request", "invalid value for field 'input'")
    steps: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        if isinstance(item, dict) and "role" in item:
            steps.extend(_flush(pending))
            content = item.get("content")
            blocks = [
                _content_block(b, f"input[{i}].content")
                for b in (content if isinstance(content, list) else [content])
            ]
            if item["role"] == "model":
                steps.extend(_model_blocks_to_steps(blocks))
            else:
                steps.append({"type": "user_input", "content": blocks})
        elif isinstance(item, dict) and item.get("type") in STEP_TYPES:
            steps.extend(_flush(pending))
            steps.append(item)
        else:
            pending.append(_content_block(item, f"input[{i}]"))
    steps.extend(_flush(pending))
    return steps


def _flush(pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not pending:
        return []
    step = {"type": "user_input", "content": list(pending)}
    pending.clear()
    return [step]


def _model_blocks_to_steps(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A model turn's content blocks as steps (the client's typed conversion, on dicts)."""
    return [step.to_dict() for step in steps_from_outputs(_CONTENTS.validate_python(blocks))]


def outputs_of(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The legacy ``outputs`` of steps (the client's typed conversion, on dicts)."""
    return [block.to_dict() for block in outputs_from_steps(_STEPS.validate_python(steps))]


def wants_legacy(headers: Any, forced: str | None) -> bool:
    if forced:
        return forced == "legacy"
    revision = headers.get("api-revision")
    if revision and revision < STEPS_REVISION:
        return True
    agents = headers.getlist("user-agent") if hasattr(headers, "getlist") else [headers.get("user-agent", "")]
    return any("google-genai-sdk/1." in (agent or "") for agent in agents)


def sse_frame(event: dict[str, Any]) -> bytes:
    return f"event: {event['event_type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


class LegacyTranslator:
    """Turns steps-schema events into legacy (``outputs``/``content.*``) events, one stream at a time.

    Function-call arguments arrive as JSON fragments in the steps schema but as one whole object in the
    legacy one, so such a step is held back until its ``step.stop``.
    """

    def __init__(self) -> None:
        self._index_of: dict[int, int] = {}
        self._open: dict[int, dict[str, Any]] = {}
        self._args: dict[int, list[str]] = {}
        self._next = 0

    def _content_index(self, step_index: int) -> int:
        if step_index not in self._index_of:
            self._index_of[step_index] = self._next
            self._next += 1
        return self._index_of[step_index]

    def translate(self, event: dict[str, Any]) -> Iterator[dict[str, Any]]:
        kind = event["event_type"]
        base = {"event_id": event.get("event_id")}
        if kind in ("interaction.created", "interaction.completed"):
            interaction = legacy_interaction(event["interaction"])
            name = "interaction.start" if kind == "interaction.created" else "interaction.complete"
            yield {"event_type": name, "interaction": interaction, **base}
        elif kind == "step.start":
            yield from self._start(event, base)
        elif kind == "step.delta":
            yield from self._delta(event, base)
        elif kind == "step.stop":
            yield from self._stop(event, base)
        elif kind in ("interaction.status_update", "error"):
            yield event

    def _start(self, event: dict[str, Any], base: dict[str, Any]) -> Iterator[dict[str, Any]]:
        step = event["step"]
        self._open[event["index"]] = step
        if step["type"] == "function_call":
            self._args[event["index"]] = []
        elif step["type"] not in ("model_output", "user_input"):
            yield {"event_type": "content.start", "index": self._content_index(event["index"]), "content": step, **base}

    def _delta(self, event: dict[str, Any], base: dict[str, Any]) -> Iterator[dict[str, Any]]:
        index, delta = event["index"], event["delta"]
        if delta["type"] == "arguments_delta":
            self._args.setdefault(index, []).append(delta["arguments"])
            return
        if index not in self._index_of:
            yield {"event_type": "content.start", "index": self._content_index(index), "content": {"type": delta["type"]}, **base}
            base = {"event_id": f"{event.get('event_id')}.1"}
        yield {"event_type": "content.delta", "index": self._content_index(index), "delta": delta, **base}

    def _stop(self, event: dict[str, Any], base: dict[str, Any]) -> Iterator[dict[str, Any]]:
        index = event["index"]
        step = self._open.pop(index, {})
        if index in self._args:  # a function call: its arguments, whole, as one legacy content
            fragments = "".join(self._args.pop(index))
            call = {"type": "function_call", "id": step.get("id"), "name": step.get("name"),
                    "arguments": json.loads(fragments) if fragments else step.get("arguments", {})}  # fmt: skip
            ci, eid = self._content_index(index), event.get("event_id")
            yield {"event_type": "content.start", "index": ci, "content": {"type": "function_call"}, "event_id": f"{eid}.0"}
            yield {"event_type": "content.delta", "index": ci, "delta": call, "event_id": f"{eid}.1"}
            yield {"event_type": "content.stop", "index": ci, "event_id": f"{eid}.2"}
        elif index in self._index_of:
            yield {"event_type": "content.stop", "index": self._index_of[index], **base}


def legacy_interaction(interaction: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in interaction.items() if k != "steps"}
    if "steps" in interaction:
        out["outputs"] = outputs_of(interaction["steps"])
    out["role"] = "model"
    usage = out.get("usage")
    if isinstance(usage, dict) and "total_thought_tokens" in usage:
        usage = dict(usage)
        usage["total_reasoning_tokens"] = usage.pop("total_thought_tokens")
        out["usage"] = usage
    return out
