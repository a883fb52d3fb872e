"""MCP servers bridged from the kernel: their tools become function tools the call loop runs.

The API cannot reach a server on the user's machine (or a ``stdio:`` command), so the kernel connects
with the official ``mcp`` SDK (streamable HTTP or stdio), lists the tools (every page), declares them
as function tools, and calls them when the model asks. Connections live on one background event loop
for the whole kernel, so they are opened once per server and reused across cells, whatever loop a cell
runs on. No IPython here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import shlex
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

from .errors import OptionError

__all__ = ["MCPBridge", "MCPServerInfo", "bridged", "server_side_tool", "all_tools", "tool_result"]

T = TypeVar("T")
CONNECT_TIMEOUT = 20.0


@dataclass
class MCPServerInfo:
    """A connected server: what it is called and the tools it offers."""

    target: str
    name: str
    tools: list[Any] = field(default_factory=list)
    """``mcp.types.Tool`` objects (name, description, input_schema)."""


def bridged(target: str, mode: str) -> bool:
    """Whether the kernel must bridge ``target``: ``stdio:`` commands and loopback or private hosts
    always (the API cannot reach them); public URLs only with ``mcp_bridge = "always"``."""
    if target.startswith("stdio:"):
        if mode == "never":
            raise OptionError(
                f"--mcp {target}: a stdio server can only be bridged by the kernel (mcp_bridge is 'never')"
            )
        return True
    host = urlparse(target).hostname or ""
    if mode in ("always", "never"):
        return mode == "always"
    try:
        address = ipaddress.ip_address(host)
        local = address.is_loopback or address.is_private or address.is_link_local
    except ValueError:
        local = host == "localhost" or host.endswith((".local", ".localhost", ".internal"))
    return local


def server_side_tool(
    target: str, allowed: list[str], headers: dict[str, str], mode: str = "auto"
) -> dict[str, Any]:
    """The ``mcp_server`` tool declaration for a server the API connects to itself (with ``mcp_bridge =
    "never"``, any URL: a local Interactions server can dial one on loopback)."""
    if not target.startswith("https://") and mode != "never":
        raise OptionError(
            f"--mcp {target}: the API reaches only https:// MCP servers (or set mcp_bridge = 'always')"
        )
    declaration: dict[str, Any] = {"type": "mcp_server", "name": _name_of(target), "url": target}
    if headers:
        declaration["headers"] = dict(headers)
    if allowed:
        declaration["allowed_tools"] = [{"mode": "auto", "tools": list(allowed)}]
    return declaration


def _name_of(target: str) -> str:
    if target.startswith("stdio:"):
        words = shlex.split(target[6:])
        return words[-1].rsplit("/", 1)[-1] if words else "stdio"
    return urlparse(target).hostname or target


async def all_tools(client: Any) -> list[Any]:
    """Every tool a connected ``mcp.Client`` offers, page after page (some clients read only the first)."""
    tools: list[Any] = []
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools += page.tools
        cursor = page.next_cursor
        if not cursor:
            return tools


def tool_result(result: Any) -> tuple[Any, bool]:
    """An MCP ``CallToolResult`` as (the value the API takes, whether it is an error): structured content
    if any, else its text (as JSON when it is JSON)."""
    texts = [getattr(block, "text", None) for block in result.content]
    text = "\n".join(t for t in texts if t is not None)
    if result.is_error:
        return text, True
    if result.structured_content is not None:
        return result.structured_content, False
    try:
        return (json.loads(text) if text else None), False
    except ValueError:
        return text, False


class MCPBridge:
    """Every bridged MCP connection of one kernel, on one background event loop.

    Each connection is owned by a task of its own that opens it, waits, and closes it: the SDK's
    connections are anyio task groups, which must be exited by the task that entered them. The loop is
    shut down the way IPython's script magics end theirs: stop, join the thread, close.
    """

    def __init__(self, call_timeout: float = 30.0) -> None:
        self.call_timeout = call_timeout
        self.servers: dict[str, MCPServerInfo] = {}
        self.close_errors: list[str] = []
        """What went wrong closing connections, if anything (closing never raises)."""
        self._clients: dict[str, Any] = {}
        self._owners: dict[str, tuple[asyncio.Event, asyncio.Task[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- the loop ---------------------------------------------------------------------------------

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="gemini-magics-mcp")
                self._thread.start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)

    def close(self) -> None:
        """Close every connection (stdio servers end with them), each in the task that opened it; then
        stop the loop, wait for its thread and close it."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None:
            return
        try:
            self.close_errors += asyncio.run_coroutine_threadsafe(self._close_all(), loop).result(10)
        except Exception as exc:  # a connection that would not close in time: the loop goes anyway
            self.close_errors.append(f"{type(exc).__name__}: {exc}")
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)
        if not loop.is_running():
            loop.close()
        self._clients.clear()
        self._owners.clear()
        self.servers.clear()

    async def _close_all(self) -> list[str]:
        for closing, _task in self._owners.values():
            closing.set()
        ended = await asyncio.gather(*(task for _, task in self._owners.values()), return_exceptions=True)
        return [f"{type(e).__name__}: {e}" for e in ended if isinstance(e, BaseException)]

    # -- connections ------------------------------------------------------------------------------

    def connect(self, target: str) -> MCPServerInfo:
        """The server at ``target`` (a URL, or ``stdio:COMMAND ARGS``), connected once and reused."""
        if target not in self.servers:
            try:
                import mcp  # noqa: F401 - the official SDK, an extra
            except ImportError:
                raise OptionError(
                    f"--mcp {target}: needs the MCP SDK: pip install 'gemini-magics[mcp]'"
                ) from None
            try:
                self.servers[target] = self._run(self._connect(target), CONNECT_TIMEOUT + 1)
            except OptionError:
                raise
            except Exception as exc:  # the SDK's, the transport's, a time-out: one line for the user
                raise OptionError(f"--mcp {target}: cannot connect ({type(exc).__name__}: {exc})") from None
        return self.servers[target]

    async def _connect(self, target: str) -> MCPServerInfo:
        from mcp import Client, StdioServerParameters

        if target.startswith("stdio:"):
            words = shlex.split(target[6:])
            if not words:
                raise OptionError("--mcp stdio: needs a command, e.g. --mcp 'stdio:python server.py'")
            server: Any = StdioServerParameters(command=words[0], args=words[1:])
        else:
            server = target
        opened: asyncio.Future[MCPServerInfo] = asyncio.get_running_loop().create_future()
        closing = asyncio.Event()

        async def own() -> None:
            """Open the connection, hold it until the bridge closes, close it: all in this one task."""
            try:
                async with Client(server, read_timeout_seconds=self.call_timeout) as client:
                    self._clients[target] = client
                    info = getattr(client, "server_info", None)
                    opened.set_result(MCPServerInfo(target, getattr(info, "name", None) or _name_of(target),
                                                    await all_tools(client)))  # fmt: skip
                    await closing.wait()
            except BaseException as exc:
                if not opened.done():
                    opened.set_exception(exc)
                    return
                raise

        task = asyncio.create_task(own(), name=f"mcp {target}")
        try:
            info = await asyncio.wait_for(asyncio.shield(opened), CONNECT_TIMEOUT)
        except BaseException:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        self._owners[target] = (closing, task)
        return info

    def call(self, target: str, tool: str, arguments: dict[str, Any]) -> Any:
        """Call a tool; its result as the API takes it. An MCP ``isError`` raises, so it goes back as an error."""
        client = self._clients[target]
        result = self._run(client.call_tool(tool, arguments, read_timeout_seconds=self.call_timeout),
                           self.call_timeout + 5)  # fmt: skip
        value, is_error = tool_result(result)
        if is_error:
            raise RuntimeError(value or "the MCP server reported an error")
        return value
