"""``mcp_server`` tools on the local server: it connects to the declared MCP server itself, as the API does.

With the official ``mcp`` SDK's client (streamable HTTP), read and called the way the kernel's bridge
does (``mcp_bridge.all_tools`` / ``tool_result``). It dials only loopback hosts, or hosts the
server was told to allow, so a request cannot make it reach anywhere else. One connection per
interaction: list the tools (every page, filtered by ``allowed_tools``), call the ones chosen.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

CALL_TIMEOUT = 30.0


@dataclass
class McpCall:
    name: str
    arguments: dict[str, Any]
    result: Any = None
    is_error: bool = False


def dialable(url: str, allowed_hosts: frozenset[str]) -> bool:
    host = (urlparse(url).hostname or "").lower()
    if host in allowed_hosts or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_names(declaration: dict[str, Any]) -> set[str] | None:
    """The tool names ``allowed_tools`` lets through (None: all of them)."""
    rules = declaration.get("allowed_tools") or []
    if not rules:
        return None
    names: set[str] = set()
    for rule in rules:
        if isinstance(rule, dict) and rule.get("mode", "auto") != "none":
            names.update(rule.get("tools") or [])
    return names


def use_server(declaration: dict[str, Any], choose: Any) -> tuple[list[Any], list[McpCall]]:
    """Connect, list the (allowed) tools, let ``choose(tools)`` pick calls, make them: (tools, calls)."""
    return asyncio.run(_use(declaration, choose))


async def _use(declaration: dict[str, Any], choose: Any) -> tuple[list[Any], list[McpCall]]:
    from mcp import Client

    from ...mcp_bridge import all_tools, tool_result

    async with Client(declaration["url"], read_timeout_seconds=CALL_TIMEOUT) as client:
        allowed = allowed_names(declaration)
        tools = [t for t in await all_tools(client) if allowed is None or t.name in allowed]
        calls: list[McpCall] = choose(tools)
        for call in calls:
            done = await client.call_tool(call.name, call.arguments, read_timeout_seconds=CALL_TIMEOUT)
            call.result, call.is_error = tool_result(done)
        return tools, calls
