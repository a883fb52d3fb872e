"""Shared fixtures: a no-network guard, loopback servers, clients of both schema generations, shells."""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gemini_magics import Client
from gemini_magics.local import LocalServer, start_server

LEGACY_REVISION = "2026-05-07"
# the short model ids tests use, known to every local server they start (others get 404 model_not_found);
# set before any fixture: the session's server reads it when it starts, and kernels and children inherit it
os.environ["GEMINI_MAGICS_LOCAL_MODELS"] = "m,m-default,gemini-test,gemini-x,a,b"


def _is_loopback(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX
        return True
    host = address[0]
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection to a non-loopback address fails the test: tests never touch the real API."""
    original = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise AssertionError(f"test tried to reach the network: {address!r}")
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GEMINI_MAGICS_ENGINE", "scripted")
    monkeypatch.setenv("GEMINI_MAGICS_RETRY_CLOCK", "0.02")  # every back-off still happens, 50x sooner
    monkeypatch.setenv("GEMINI_MAGICS_AGENT_STEP_SECONDS", "0.1")  # the Deep Research stand-in's pace
    # each test its own journal and row cache, never the user's
    monkeypatch.setenv("GEMINI_MAGICS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    srv = start_server(engine="scripted")
    yield srv
    srv.stop()


@pytest.fixture
def allow_local(server: LocalServer) -> Iterator[LocalServer]:
    """The shared server runs code_execution and fetches loopback pages during this test: both are off by
    default (prompts are untrusted), so a test that needs them says so."""
    from gemini_magics.local.policy import Policy

    before = server.api.policy
    server.api.policy = Policy(code_execution=True, fetch_hosts=frozenset({"127.0.0.1", "localhost"}))
    yield server
    server.api.policy = before


@pytest.fixture(params=["steps", "legacy"])
def generation(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(server: LocalServer, generation: str) -> Iterator[Client]:
    revision = LEGACY_REVISION if generation == "legacy" else "2026-05-20"
    with Client(base_url=server.base_url, api_revision=revision, max_retries=2) as c:
        c._sleep = lambda s: None
        yield c


@pytest.fixture
def steps_client(server: LocalServer) -> Iterator[Client]:
    with Client(base_url=server.base_url, max_retries=2) as c:
        yield c


def requests_to(server: LocalServer, path_part: str, method: str = "POST") -> list[dict[str, Any]]:
    return [r for r in server.api.requests if r["method"] == method and path_part in r["path"]]


class Shell:
    """A real IPython shell with the extension loaded, and helpers to run cells in it."""

    def __init__(self, base_url: str) -> None:
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        config = Config()
        config.HistoryManager.enabled = False
        self.ip = InteractiveShell(config=config)
        self.ip.run_line_magic("load_ext", "gemini_magics")
        self.magics = self.ip._gemini_magics
        self.base_url = base_url

    def run(self, cell: str, cell_id: str | None = None) -> Any:
        """Run a cell that must succeed; return its value. ``cell_id`` as a notebook frontend sends it."""
        result = self.ip.run_cell(cell, cell_id=cell_id)
        if not result.success:
            raise AssertionError(f"cell failed: {result.error_in_exec or result.error_before_exec!r}")
        return result.result

    def fail(self, cell: str) -> BaseException:
        result = self.ip.run_cell(cell)
        assert not result.success, f"cell should have failed: {cell!r}"
        error = result.error_in_exec or result.error_before_exec
        assert error is not None
        return error

    def close(self) -> None:
        import atexit

        self.ip.run_line_magic("unload_ext", "gemini_magics")
        self.ip.clear_instance()
        # each shell registered its exit hook (a reset and a gc.collect): hundreds of them cost the
        # suite's process a minute at exit
        atexit.unregister(self.ip.atexit_operations)


@pytest.fixture
def shell(server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
    sh = Shell(server.base_url)
    yield sh
    sh.close()


@pytest.fixture
def make_shell(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], Shell]]:
    shells: list[Shell] = []

    def make() -> Shell:
        sh = Shell(os.environ.get("GEMINI_BASE_URL", ""))
        shells.append(sh)
        return sh

    yield make
    for sh in shells:
        sh.close()


@contextlib.contextmanager
def loopback_page(body: bytes, path: str = "/") -> Iterator[str]:
    """A web page served on 127.0.0.1 for as long as the block runs (what url_context fetches); its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    served = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=served.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{served.server_address[1]}{path}"
    finally:
        served.shutdown()
        served.server_close()
