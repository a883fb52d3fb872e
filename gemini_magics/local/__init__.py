"""The embedded local Interactions server (extra ``local``): loopback only, started on demand.

>>> server = start_server(engine="scripted")     # port 0: a free port
>>> server.base_url
'http://127.0.0.1:54321'
>>> server.stop()
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .app import LocalAPI
    from .policy import Policy
    from .store import Retention

__all__ = ["LocalServer", "start_server", "create_server"]


class LocalServer:
    """A running server: its ``base_url``, its ``api`` (state, request log, engine) and ``stop()``."""

    def __init__(self, api: LocalAPI, host: str, port: int, log_level: str) -> None:
        import uvicorn

        self.api = api
        # proto=IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
        # and without it every answer on a kept-alive connection waited 40 ms (Nagle against delayed ACK)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host = host
        self.port = self._socket.getsockname()[1]
        from .guard import guarded_protocol

        config = uvicorn.Config(api.app, log_level=log_level, access_log=False, timeout_graceful_shutdown=1,
                                ws="none", lifespan="off", http=guarded_protocol())  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def engine_description(self) -> str:
        return self.api.engine.description

    @property
    def engine(self) -> Any:
        return self.api.engine

    def start(self) -> LocalServer:
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        daemon=True, name="gemini-magics-local")  # fmt: skip
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the local server failed to start")
            self._thread.join(0.01)
        return self

    def serve_forever(self) -> None:
        self._server.run(sockets=[self._socket])

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
        self._socket.close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_server(
    *,
    engine: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    schema: str | None = None,
    log_level: str = "warning",
    allowed_origins: frozenset[str] = frozenset(),
    retention: Retention | None = None,
    mcp_hosts: frozenset[str] = frozenset(),
    policy: Policy | None = None,
    models: Iterable[str] = (),
) -> LocalServer:
    """A server, not yet started. ``api_key=None`` serves without a key (the Host and Origin checks
    still hold): the magic and ``gemini-magics serve`` always give one."""
    from .app import LocalAPI
    from .engines import make_engine

    api = LocalAPI(make_engine(engine), api_key=api_key, schema=schema, allowed_hosts=frozenset({host}),
                   allowed_origins=allowed_origins, retention=retention, mcp_hosts=mcp_hosts, policy=policy,
                   models=models)  # fmt: skip
    return LocalServer(api, host, port, log_level)


def start_server(
    *,
    engine: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    schema: str | None = None,
    log_level: str = "error",
    allowed_origins: frozenset[str] = frozenset(),
    retention: Retention | None = None,
    policy: Policy | None = None,
    models: Iterable[str] = (),
) -> LocalServer:
    """Start a server in a background thread of this process and return once it accepts connections."""
    server = create_server(engine=engine, host=host, port=port, api_key=api_key, schema=schema, log_level=log_level,
                           allowed_origins=allowed_origins, retention=retention, policy=policy, models=models)  # fmt: skip
    return server.start()
