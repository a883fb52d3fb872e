"""Options + prompt + namespace → a validated, immutable :class:`CellRequest` and its JSON body.

Pure: no IPython, no HTTP. Every check of a ``%%interact`` cell's options lives here, so a bad cell is
refused (with an :class:`~gemini_magics.errors.OptionError`) before anything is sent or changed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._constants import DEFAULT_MODEL
from .chains import DEFAULT_CHAIN, Plan
from .errors import OptionError

if TYPE_CHECKING:
    from .tools import Toolbox

__all__ = ["Settings", "Schema", "CellRequest", "build_request", "resolve_schema", "split_line"]

Planner = Callable[[str, bool, bool], Plan]
"""``(chain, new, stateless) -> Plan``: where the turn goes (the session answers it)."""


@dataclass(frozen=True)
class Settings:
    """The magic's configuration as the request builder sees it (a snapshot of its traitlets)."""

    model: str = DEFAULT_MODEL
    image_model: str = "gemini-3-pro-image-preview"
    audio_model: str = "gemini-2.5-flash-preview-tts"
    video_model: str = "veo-3.1-generate-preview"
    system: str = ""
    stream: bool = True
    table_budget: int = 4000
    table_rows: int = 20
    headers: Mapping[str, str] = field(default_factory=dict)
    tool_timeout: float = 30.0
    timeout: float = 60.0
    preview_px: int = 1024
    save_dir: str = "."
    mcp_bridge: str = "auto"
    mcp_headers: Mapping[str, str] = field(default_factory=dict)
    agent_config: Mapping[str, Any] = field(default_factory=dict)
    concurrency: int = 0
    """0: by backend (:func:`run.rows.default_concurrency`)."""
    prices: Mapping[str, Any] = field(default_factory=dict)
    max_frame_rows: int = 200_000
    batch_job_rows: int = 200_000


@dataclass(frozen=True)
class Schema:
    """``--schema NAME``: the kernel object (pydantic class or dict) and the JSON schema sent."""

    name: str
    target: Any
    json_schema: dict[str, Any]


@dataclass(frozen=True)
class CellRequest:
    """One checked ``%%interact`` cell: what to send, where its turn goes, what to do with the answer."""

    prompt: str
    model: str
    params: Mapping[str, Any]
    """The API fields besides ``input`` and ``previous_interaction_id`` (model/agent, config, formats)."""
    parts: tuple[Any, ...]
    """Content parts of the prompt; big files are still :class:`~gemini_magics.inputs.PendingUpload`."""
    plan: Plan
    chain: str = DEFAULT_CHAIN
    new: bool = False
    store: bool = True
    stream: bool = True
    background: bool = False
    dry_run: bool = False
    silent: bool = False
    out: str | None = None
    schema: Schema | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    """What the user should know about what is sent (e.g. a table sampled to fit the budget)."""
    timeout: float = 60.0
    """Seconds without an answer (or between two streamed events) before the cell gives up."""
    preview_px: int = 1024
    """Generated images larger than this are saved in the notebook as previews."""
    save_dir: str = "."
    """Where Save buttons write (``InteractMagics.save_dir``)."""
    toolbox: Toolbox | None = None
    """``--tools``: the functions the kernel runs for the model, and the built-ins passed through."""
    mcp_bridged: tuple[str, ...] = ()
    """``--mcp`` servers the kernel connects to (their tools join the toolbox when the cell runs)."""
    mcp_allowed: tuple[str, ...] = ()
    max_steps: int = 10

    @property
    def max_output_tokens(self) -> int | None:
        """The ``--max-tokens`` asked for, if any."""
        limit = self.params.get("generation_config", {}).get("max_output_tokens")
        return int(limit) if limit else None

    @property
    def structured(self) -> bool:
        return self.schema is not None

    @property
    def short_prompt(self) -> str:
        return " ".join(self.prompt.split())[:80]

    def body(self, parts: list[Any] | None = None) -> dict[str, Any]:
        """The JSON body of ``POST /interactions`` (``parts`` replaces the prompt's, once uploaded)."""
        parts = list(self.parts) if parts is None else parts
        body = dict(self.params)
        plan = self.plan
        simple = len(parts) == 1 and isinstance(parts[0], dict) and parts[0].get("type") == "text"
        if plan.history:
            body["input"] = plan.history + [{"type": "user_input", "content": parts}]
        else:
            body["input"] = parts[0]["text"] if simple else parts
        if plan.previous_interaction_id:
            body["previous_interaction_id"] = plan.previous_interaction_id
        return body


def expand_line(line: str, namespace: Mapping[str, Any]) -> str:
    """The line with ``{expr}`` and ``$name`` expanded from the kernel's namespace, as IPython expands magic
    lines, except that ``$`` before a digit stays as written (``--budget $5`` is five dollars)."""
    import re

    from IPython.utils.text import DollarFormatter

    escaped = re.sub(r"\$(?=[\d.])", "$$", line)
    try:
        return str(DollarFormatter().vformat(escaped, args=[], kwargs=dict(namespace)))
    except Exception:  # as IPython does: a line that does not expand is used as written
        return line


def parse_line(parser: argparse.ArgumentParser, line: str) -> argparse.Namespace:
    """The ``%%interact`` line's options; a trailing ``;`` on it silences the cell, as one ending the cell
    does (``-o out;``: bind, show nothing)."""
    stripped = line.rstrip()
    quiet = stripped.endswith(";")
    args = parser.parse_args(split_line(stripped[:-1] if quiet else line))
    args.silent_line = quiet
    return args


def split_line(line: str) -> list[str]:
    """The ``%%interact`` line as words, shell-style: ``-s "Be terse."`` gives ``Be terse.`` without quotes.

    (IPython's ``parse_argstring`` keeps the quotes, which would then be sent as part of the value.)
    """
    import shlex

    try:
        return _stdio_commands(shlex.split(line))
    except ValueError as exc:
        raise OptionError(f"cannot parse the %%interact line: {exc} (check its quotes)") from None


def _stdio_commands(words: list[str]) -> list[str]:
    """``--mcp stdio:python server.py`` unquoted: the words after ``stdio:`` up to the next option are the
    command's (a word starting with ``-`` could be either, so the command stops there: quote it then)."""
    import shlex

    out: list[str] = []
    i = 0
    while i < len(words):
        out.append(words[i])
        i += 1
        if out[-1] == "--mcp" and i < len(words) and words[i].startswith("stdio:"):
            command = shlex.split(words[i].removeprefix("stdio:"))  # the quoted form: the whole command already
            i += 1
            while i < len(words) and not words[i].startswith("-"):
                command.append(words[i])
                i += 1
            out.append("stdio:" + shlex.join(command))
    return out


def build_request(
    args: argparse.Namespace, cell: str, namespace: Mapping[str, Any], settings: Settings, planner: Planner
) -> CellRequest:
    """Check the options and the prompt and plan the turn; nothing is sent and nothing changes."""
    from .inputs import Options, render_parts

    _check_options(args)
    prompt, silent = _prompt(cell)
    silent = silent or bool(getattr(args, "silent_line", False))
    schema = resolve_schema(args.schema, namespace)
    notes: list[str] = []
    options = Options(table_budget=settings.table_budget, max_rows=settings.table_rows)
    parts = render_parts(prompt, namespace, options, notes)
    if args.transcribe and not any(_kind(p) in ("audio", "video") for p in parts):
        raise OptionError("--transcribe transcribes audio or video: reference one in the cell ({{recording}})")
    default = (settings.image_model if args.image else settings.audio_model if args.audio
               else settings.video_model if args.video else settings.model)  # fmt: skip
    model = args.agent or args.model or default
    chain = args.chain or DEFAULT_CHAIN
    toolbox = _toolbox(args, namespace, settings, options)
    params = _params(args, model, schema, settings)
    if args.video:  # from a referenced image when there is one: its first frame
        task = "image_to_video" if any(_kind(p) == "image" for p in parts) else "text_to_video"
        params.setdefault("generation_config", {})["video_config"] = {"task": task}
    bridged, server_side, allowed = _mcp(args, settings)
    if toolbox is not None or server_side:
        params["tools"] = (toolbox.declarations() if toolbox else []) + server_side
    return CellRequest(
        prompt=prompt, model=model, params=params, parts=tuple(parts), toolbox=toolbox, max_steps=args.max_steps,
        mcp_bridged=bridged, mcp_allowed=allowed,
        plan=planner(chain, args.new, args.no_store), chain=chain, new=args.new, store=not args.no_store,
        stream=settings.stream and not args.no_stream, background=args.background or bool(args.agent),
        dry_run=args.dry_run,
        silent=silent, out=args.out, schema=schema, headers=dict(settings.headers), notes=tuple(notes), timeout=settings.timeout, preview_px=settings.preview_px,
        save_dir=settings.save_dir,
    )  # fmt: skip


def _check_options(args: argparse.Namespace) -> None:
    if args.out and not args.out.isidentifier():
        raise OptionError(f"-o needs a Python identifier, got {args.out!r}")
    if args.chain is not None and not args.chain.replace("-", "_").isidentifier():
        raise OptionError(f"--chain needs a simple name (letters, digits, _ or -), got {args.chain!r}")
    if args.agent and args.model:
        raise OptionError("use either -m/--model or --agent, not both")
    model_only = (args.temperature, args.max_tokens, args.seed, args.thinking or None)
    if args.agent and any(v is not None for v in model_only):
        raise OptionError(
            "--temperature, --max-tokens, --seed and --thinking apply to models, not to --agent"
        )
    if args.agent and args.no_store:
        raise OptionError("agents run in the background, which needs the interaction stored: drop --no-store")
    if args.agent_config and not args.agent:
        raise OptionError("--agent-config configures an --agent: add --agent ID")
    if args.background and args.no_store:
        raise OptionError("--background needs the interaction stored on the server: drop --no-store")
    if args.max_tokens is not None and args.max_tokens <= 0:
        raise OptionError(f"--max-tokens must be a positive number, got {args.max_tokens}")
    if args.temperature is not None and not 0.0 <= args.temperature <= 2.0:
        raise OptionError(f"--temperature must be between 0 and 2, got {args.temperature}")
    if (args.aspect_ratio and not (args.image or args.video)) or (args.image_size and not args.image):
        raise OptionError("--aspect-ratio and --image-size shape generated images: add --image (or --video)")
    _check_video(args)
    if args.voice and not args.audio:
        raise OptionError("--voice picks the voice of spoken answers: add --audio")
    if args.speakers and args.transcribe != "verbatim":
        raise OptionError("--speakers tells who said what in a verbatim transcript: add --transcribe (verbatim)")
    if args.audio and (args.image or args.schema):
        raise OptionError("--audio answers with speech alone: drop --image / --schema (or ask in two cells)")
    speech_config(args.voice)  # a malformed --voice fails here, before anything is sent
    if args.max_steps < 1:
        raise OptionError(f"--max-steps must be at least 1, got {args.max_steps}")


def _mcp(
    args: argparse.Namespace, settings: Settings
) -> tuple[tuple[str, ...], list[dict[str, Any]], tuple[str, ...]]:
    """``--mcp``: (servers the kernel bridges, ``mcp_server`` declarations for the API, the allow-list)."""
    allowed = tuple(n.strip() for n in (args.mcp_tools or "").split(",") if n.strip())
    if not args.mcp:
        if allowed:
            raise OptionError("--mcp-tools picks tools of --mcp servers: add --mcp URL_OR_stdio:COMMAND")
        return (), [], ()
    from .mcp_bridge import bridged, server_side_tool

    local = tuple(t for t in args.mcp if bridged(t, settings.mcp_bridge))
    if local and (args.background or args.agent):
        raise OptionError(
            "--background cannot run MCP tools the kernel bridges (it answers each call): drop --background"
        )
    remote = [
        server_side_tool(t, list(allowed), dict(settings.mcp_headers), settings.mcp_bridge)
        for t in args.mcp
        if t not in local
    ]
    return local, remote, allowed


def _toolbox(
    args: argparse.Namespace, namespace: Mapping[str, Any], settings: Settings, options: Any
) -> Toolbox | None:
    if not args.tools:
        return None
    from .tools import Toolbox, resolve_tools

    names = [n.strip() for n in args.tools.split(",") if n.strip()]
    if not names:
        raise OptionError(
            "--tools needs names: kernel functions and/or google_search, code_execution, url_context, "
            "file_search:STORE, google_maps, retrieval"
        )
    functions, builtins = resolve_tools(names, namespace)
    if functions and (args.background or args.agent):
        raise OptionError(
            "--background cannot run kernel functions (the kernel answers each call): drop --background, "
            "or use only built-in tools"
        )
    return Toolbox(functions, builtins, timeout=settings.tool_timeout, namespace_options=options)


def _prompt(cell: str) -> tuple[str, bool]:
    """The prompt, and whether a trailing ``;`` (IPython's "silence the output" marker) ended it."""
    prompt = cell.strip()
    silent = prompt.endswith(";")
    prompt = prompt[:-1].rstrip() if silent else prompt
    if not prompt:
        raise OptionError("the cell is empty: write the prompt below the %%interact line")
    return prompt, silent


def resolve_schema(name: str | None, namespace: Mapping[str, Any]) -> Schema | None:
    """``--schema NAME`` as a pydantic model class or a valid JSON-schema dict from the kernel."""
    if not name:
        return None
    if name not in namespace:
        raise OptionError(
            f"--schema {name}: no such variable; define a pydantic model class or a JSON-schema dict named {name}"
        )
    obj = namespace[name]
    schema_method = getattr(obj, "model_json_schema", None)
    if isinstance(obj, type) and callable(schema_method):
        return Schema(name, obj, schema_method())
    if isinstance(obj, dict) and ("type" in obj or "properties" in obj or "$ref" in obj or "anyOf" in obj):
        _check_json_schema(name, obj)
        return Schema(name, obj, obj)
    raise OptionError(
        f"--schema {name}: expected a pydantic model class or a JSON-schema dict, got {type(obj).__name__}"
    )


def _check_json_schema(name: str, schema: dict[str, Any]) -> None:
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)
    try:
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top level"
        raise OptionError(
            f"--schema {name} is not a valid JSON Schema: {exc.message} at {where} (fix the dict, or use a pydantic model)"
        ) from None


def _params(
    args: argparse.Namespace, model: str, schema: Schema | None, settings: Settings
) -> dict[str, Any]:
    params: dict[str, Any] = {"agent": model} if args.agent else {"model": model}
    if args.agent:
        params["agent_config"] = _agent_config(args, model, settings)
    system = args.system if args.system is not None else settings.system
    if system:
        params["system_instruction"] = system
    config = _generation_config(args)
    if args.audio and args.voice:
        config["speech_config"] = speech_config(args.voice)
    if args.transcribe:
        mode: dict[str, Any] = {"type": args.transcribe, **({"diarization_mode": "speaker"} if args.speakers else {})}
        config["transcription_config"] = {"mode": mode}
    if config:
        params["generation_config"] = config
    formats = _response_formats(schema, args)
    if formats:
        params["response_format"] = formats if len(formats) > 1 else formats[0]
    if args.no_store:
        params["store"] = False
    if getattr(args, "service_tier", None):
        params["service_tier"] = args.service_tier
    if args.background or args.agent or args.video:  # agents and videos take minutes: always in the background
        params["background"] = True
    return params


def _agent_config(args: argparse.Namespace, agent: str, settings: Settings) -> dict[str, Any]:
    import json

    config = dict(settings.agent_config)
    if args.agent_config:
        try:
            given = json.loads(args.agent_config)
        except ValueError as exc:
            raise OptionError(
                f'--agent-config is not JSON: {exc} (write it as \'{{"thinking_summaries": "auto"}}\')'
            ) from None
        if not isinstance(given, dict):
            raise OptionError("--agent-config must be a JSON object")
        config.update(given)
    config.setdefault("type", "deep-research" if agent.startswith("deep-research") else "dynamic")
    return config


def _generation_config(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if args.temperature is not None:
        config["temperature"] = args.temperature
    if args.max_tokens is not None:
        config["max_output_tokens"] = args.max_tokens
    if args.seed is not None:
        config["seed"] = args.seed
    if args.thinking:
        config["thinking_level"] = args.thinking
        config["thinking_summaries"] = "auto"
    return config


def _check_video(args: argparse.Namespace) -> None:
    from ._constants import VIDEO_ASPECT_RATIOS

    if (args.duration is not None or args.resolution) and not args.video:
        raise OptionError("--duration and --resolution shape a generated video: add --video")
    if not args.video:
        return
    if args.image or args.audio or args.schema:
        raise OptionError("--video answers with a video alone: drop --image / --audio / --schema")
    if args.aspect_ratio and args.aspect_ratio not in VIDEO_ASPECT_RATIOS:
        raise OptionError(f"--aspect-ratio {args.aspect_ratio}: a video is {' or '.join(VIDEO_ASPECT_RATIOS)}")
    if args.duration is not None and not 1 <= args.duration <= 60:
        raise OptionError(f"--duration must be 1 to 60 seconds, got {args.duration}")
    if args.no_store:
        raise OptionError("--video runs in the background, which needs the interaction stored: drop --no-store")


def _video_format(args: argparse.Namespace) -> dict[str, Any]:
    shape = {"aspect_ratio": args.aspect_ratio, "resolution": args.resolution,
             "duration": f"{args.duration}s" if args.duration is not None else None}  # fmt: skip
    return {"type": "video", "delivery": "inline", **{k: v for k, v in shape.items() if v}}


def _kind(part: Any) -> str:
    """A content part's kind (audio, video, image…), whether built already or a file still to send."""
    if isinstance(part, dict):
        return str(part.get("type") or "")
    return str(getattr(part, "mime_type", "")).split("/")[0]


def speech_config(voice: str | None) -> list[dict[str, str]]:
    """``--voice Kore`` → ``[{"voice": "Kore"}]``; ``--voice Alice=Kore,Bob=Puck`` → one entry a speaker (the
    names the prompt gives its speakers), as ``generation_config.speech_config`` takes them."""
    if not voice:
        return []
    if "=" not in voice:
        if "," in voice or not voice.strip():
            raise OptionError(f"--voice {voice}: one voice (Kore), or Speaker=Voice pairs (Alice=Kore,Bob=Puck)")
        return [{"voice": voice.strip()}]
    pairs = [item.partition("=") for item in voice.split(",")]
    if any(not who.strip() or not sep or not what.strip() for who, sep, what in pairs):
        raise OptionError(f"--voice {voice}: write each speaker as Name=Voice, comma-separated (Alice=Kore,Bob=Puck)")
    return [{"speaker": who.strip(), "voice": what.strip()} for who, _, what in pairs]


def _response_formats(schema: Schema | None, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The ``response_format`` entries the options ask for (an audio or video answer comes alone: checked)."""
    if args.audio:
        return [{"type": "audio", "mime_type": "audio/wav"}]
    if args.video:
        return [_video_format(args)]
    formats: list[dict[str, Any]] = []
    if schema is not None:
        formats.append({"type": "text", "mime_type": "application/json", "schema": schema.json_schema})
    if args.image:
        shape = {k: v for k, v in (("aspect_ratio", args.aspect_ratio), ("image_size", args.image_size)) if v}
        formats.append({"type": "image", "mime_type": "image/jpeg", **shape})  # the only type the API allows
        if len(formats) == 1:
            formats.append({"type": "text"})
    return formats
