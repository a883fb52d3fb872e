"""Which server the magic talks to: Gemini (a key), ``GEMINI_BASE_URL``, or the embedded local server."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._constants import API_KEY_ENV_VARS, BASE_URL_ENV_VAR, DEFAULT_BASE_URL, ENGINE_ENV_VAR, api_key_from_env
from .errors import BackendUnavailable

if TYPE_CHECKING:
    from ._client import Client
    from .local.child import EngineInfo, ServerProcess, Starting
    from .local.policy import Policy


@dataclass
class Backend:
    kind: str
    """``gemini``, ``custom`` (GEMINI_BASE_URL) or ``local`` (the embedded server)."""
    base_url: str
    client: Client
    server: ServerProcess | None = None
    """The embedded server, a child process of this kernel."""

    @property
    def description(self) -> str:
        if self.kind == "local" and self.server is not None:
            return f"embedded local server at {self.base_url} (engine: {self.server.engine_description})"
        if self.kind == "custom":
            return f"{self.base_url} (from {BASE_URL_ENV_VAR})"
        return f"Gemini API at {self.base_url}"

    @property
    def engine(self) -> EngineInfo | None:
        """The embedded server's engine (None for other backends)."""
        return self.server.engine if self.server is not None else None

    def death(self, wait: float = 0.0) -> str | None:
        """How the embedded server stopped, if it did (one line); None while it runs or for other backends."""
        return self.server.death(wait) if self.server is not None else None

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


def local_extra_installed() -> bool:
    """Whether the embedded server can run (its package and the ``local`` extra's server libraries), known
    without importing them: they load in the server's own process."""
    import importlib.util

    for name in ("gemini_magics.local", "starlette", "uvicorn"):
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
            return False
    return True


def prestart(engine: str | None, policy: Policy) -> Starting | None:
    """Spawn the embedded server now if the environment will choose it, so that its start overlaps the
    kernel's own work before the first cell's request (None when another backend will answer, or when a
    SmolLM2 engine has not been probed on this machine yet)."""
    if os.environ.get(BASE_URL_ENV_VAR) or key_source() or not local_extra_installed():
        return None
    try:
        from .local.child import Starting
        from .local.engines import default_engine_name
        from .local.engines.probe import known_to_run
    except ImportError:
        return None
    import secrets

    chosen = engine or default_engine_name()
    if chosen == "smollm2" and not known_to_run():
        return None
    return Starting(engine=chosen, api_key=secrets.token_urlsafe(32), policy=policy)


def resolve_backend(
    announce: Callable[[str], None],
    engine: str | None = None,
    policy: Policy | None = None,
    starting: Starting | None = None,
) -> Backend:
    from ._client import Client

    base_url = os.environ.get(BASE_URL_ENV_VAR)
    source = key_source()
    if (base_url or source) and starting is not None:
        starting.discard()
    if base_url:
        return Backend("custom", base_url.rstrip("/"), Client(base_url=base_url))
    if source:
        return Backend("gemini", DEFAULT_BASE_URL, Client())
    try:
        if not local_extra_installed():
            raise ImportError("the local extra")
        from .local.child import ServerProcess
        from .local.policy import Policy
    except ImportError:
        raise BackendUnavailable(
            "no GEMINI_API_KEY set and the embedded server is not installed: set GEMINI_API_KEY, "
            "or pip install 'gemini-magics[local]'"
        ) from None
    import secrets

    from .local.engines import default_engine_name

    chosen = engine or default_engine_name()
    policy = policy or Policy()
    if starting is not None and starting.engine != chosen:
        starting.discard()
        starting = None
    if starting is None and chosen == "smollm2":
        check_engine()
    try:
        if starting is None:
            # a key only this kernel's client knows: other local users, processes and web pages get 401
            server = ServerProcess.start(engine=chosen, api_key=secrets.token_urlsafe(32), policy=policy)
        else:
            server = starting.ready()
            server.set_policy(policy)
    except (RuntimeError, ValueError, OSError) as exc:
        raise BackendUnavailable(f"the embedded local server did not start: {exc}") from None
    announce(
        f"gemini-magics: no API key set, so using the embedded local server (engine: {server.engine_description}); "
        "set GEMINI_API_KEY to talk to Gemini."
    )
    return Backend(
        "local", server.base_url, Client(base_url=server.base_url, api_key=server.api_key, max_retries=1), server
    )


def check_engine() -> None:
    """The SmolLM2 engine runs on this machine (probed once per build and CPU), or a one-line error."""
    from .local.engines.probe import EngineBroken, probe_engine

    try:
        probe_engine()
    except EngineBroken as exc:
        raise BackendUnavailable(str(exc)) from None
