"""Which server the magic talks to: Gemini (a key), ``GEMINI_BASE_URL``, or the embedded local server."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._constants import API_KEY_ENV_VARS, BASE_URL_ENV_VAR, DEFAULT_BASE_URL, ENGINE_ENV_VAR, api_key_from_env
from .errors import BackendUnavailable

if TYPE_CHECKING:
    from ._client import Client
    from .local import LocalServer


@dataclass
class Backend:
    kind: str
    """``gemini``, ``custom`` (GEMINI_BASE_URL) or ``local`` (the embedded server)."""
    base_url: str
    client: Client
    server: LocalServer | None = None

    @property
    def description(self) -> str:
        if self.kind == "local" and self.server is not None:
            return f"embedded local server at {self.base_url} (engine: {self.server.engine_description})"
        if self.kind == "custom":
            return f"{self.base_url} (from {BASE_URL_ENV_VAR})"
        return f"Gemini API at {self.base_url}"

    @property
    def engine(self) -> Any:
        """The embedded server's engine (None for other backends)."""
        return self.server.api.engine if self.server is not None else None

    def close(self) -> None:
        self.client.close()
        if self.server is not None:
            self.server.stop()


def environment_signature() -> tuple[str | None, ...]:
    """Changes whenever the variables that choose the backend change."""
    return tuple(os.environ.get(n) for n in (*API_KEY_ENV_VARS, BASE_URL_ENV_VAR, ENGINE_ENV_VAR))


def key_source() -> str | None:
    """The name of the variable the API key comes from (the key itself is never needed here)."""
    return api_key_from_env()[1]


def resolve_backend(announce: Callable[[str], None], engine: str | None = None) -> Backend:
    from ._client import Client

    base_url = os.environ.get(BASE_URL_ENV_VAR)
    source = key_source()
    if base_url:
        return Backend("custom", base_url.rstrip("/"), Client(base_url=base_url))
    if source:
        return Backend("gemini", DEFAULT_BASE_URL, Client())
    try:
        from .local import start_server
    except ImportError:
        raise BackendUnavailable(
            "no GEMINI_API_KEY set and the embedded server is not installed: set GEMINI_API_KEY, "
            "or pip install 'gemini-magics[local]'"
        ) from None
    import secrets

    # a key only this kernel's client knows: other local users, processes and web pages get 401
    key = secrets.token_urlsafe(32)
    try:
        server = start_server(engine=engine, api_key=key)
    except (RuntimeError, ValueError, OSError) as exc:
        raise BackendUnavailable(f"the embedded local server did not start: {exc}") from None
    announce(
        f"gemini-magics: no API key set, so using the embedded local server (engine: {server.engine_description}); "
        "set GEMINI_API_KEY to talk to Gemini."
    )
    return Backend(
        "local", server.base_url, Client(base_url=server.base_url, api_key=key, max_retries=1), server
    )
