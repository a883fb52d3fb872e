"""MCP servers bridged from the kernel: real MCP servers made with the official SDK's own classes, one on
loopback over streamable HTTP and one over stdio, driven from a real IPython shell."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Shell, requests_to

pytest.importorskip("mcp", reason="the 'test' extra installs the mcp SDK")

SERVER = '''
from mcp.server import MCPServer

server = MCPServer("{name}")

@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b

@server.tool()
def lookup(term: str) -> str:
    """Look a term up in the glossary."""
    return {{"mcp": "Model Context Protocol"}}.get(term.lower(), "no entry for " + term)

@server.tool()
def explode(reason: str) -> str:
    """Always fails."""
    raise ValueError("the glossary is on fire")
'''


def last_create(server: Any) -> dict[str, Any]:
    return [r["json"] for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions")][-1]


@pytest.fixture(scope="module")
def http_mcp() -> Iterator[str]:
    import uvicorn

    namespace: dict[str, Any] = {}
    exec(SERVER.format(name="glossary"), namespace)  # the same server code the stdio test runs
    app = namespace["server"].streamable_http_app()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on"))
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not runner.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp"
    runner.should_exit = True
    thread.join(10)


def test_a_loopback_mcp_server_is_bridged_and_reused(shell: Shell, server: Any, http_mcp: str) -> None:
    first = shell.run(f"%%interact --mcp {http_mcp}\nUse add please.")
    (sent,) = last_create(server)["input"]
    assert sent["type"] == "function_result" and sent["name"] == "add" and sent["result"] == {"result": 2}
    (call,) = first.tool_calls
    assert call.source == "glossary" and call.arguments == {"a": 1, "b": 1}
    declared = {t["name"] for t in [r["json"] for r in requests_to(server, "/interactions")][-2]["tools"]}
    assert declared == {"add", "lookup", "explode"}
    bridge = shell.magics.session.mcp()
    client = bridge._clients[http_mcp]
    second = shell.run(f"%%interact --mcp {http_mcp} --mcp-tools lookup\nUse lookup for MCP.")
    assert bridge._clients[http_mcp] is client  # the connection was opened once, and reused
    assert second.tool_calls[0].arguments == {"term": "MCP"} and second.tool_calls[0].result == {"result": "Model Context Protocol"}
    assert [t["name"] for t in [r["json"] for r in requests_to(server, "/interactions")][-2]["tools"]] == ["lookup"]
    listing = repr(shell.ip.run_line_magic("interact", "mcp"))
    assert "glossary" in listing and "add, lookup, explode" in listing


def test_an_mcp_error_goes_back_to_the_model(shell: Shell, server: Any, http_mcp: str) -> None:
    result = shell.run(f"%%interact --mcp {http_mcp}\nUse explode.")
    (sent,) = last_create(server)["input"]
    # what the MCP server itself returned (isError, with its own text) goes back marked as an error
    assert sent["is_error"] is True and "Error executing tool explode" in sent["result"]["error"]
    assert result.tool_calls[0].error is not None


def test_a_stdio_mcp_server_is_bridged(shell: Shell, server: Any, tmp_path: Path) -> None:
    script = tmp_path / "glossary_server.py"
    script.write_text(SERVER.format(name="stdio-glossary") + "\nserver.run('stdio')\n")
    result = shell.run(f"%%interact --mcp 'stdio:{sys.executable} {script}'\nUse add.")
    assert result.tool_calls[0].source == "stdio-glossary" and result.tool_calls[0].result == {"result": 2}
    unquoted = shell.run(f"%%interact --mcp stdio:{sys.executable} {script} --max-steps 3\nUse add.")  # as typed
    assert unquoted.tool_calls[0].source == "stdio-glossary" and unquoted.tool_calls[0].result == {"result": 2}


def test_closing_the_bridge_ends_each_connection_in_its_own_task(shell: Shell, server: Any, tmp_path: Path, http_mcp: str) -> None:
    script = tmp_path / "glossary_server.py"
    script.write_text(SERVER.format(name="stdio-glossary") + "\nserver.run('stdio')\n")
    shell.run(f"%%interact --mcp 'stdio:{sys.executable} {script}'\nUse add.")
    shell.run(f"%%interact --mcp {http_mcp}\nUse add.")  # two connections, each owned by its task
    bridge = shell.magics.session.mcp()
    loop, thread = bridge._loop, bridge._thread
    children = [p for p in _children() if str(script) in p[1]]
    assert len(children) == 1  # the stdio server, started once
    bridge.close()
    assert bridge.close_errors == []  # no "exit cancel scope in a different task", nothing swallowed
    assert loop is not None and loop.is_closed() and thread is not None and not thread.is_alive()
    deadline = time.monotonic() + 5
    while any(str(script) in args for _, args in _children()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(str(script) in args for _, args in _children())  # the stdio server ended with its connection


def _children() -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                found.append((int(entry.name), args))
    return found


def test_mcp_mistakes_are_one_line(shell: Shell, server: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    for line, expected in [
        (f"--mcp http://127.0.0.1:{dead}/mcp", "cannot connect"),
        ("--mcp-tools add", "add --mcp"),
        ("--mcp http://127.0.0.1:1/mcp --background", "--background cannot run MCP tools"),
        ("--mcp http://example.com/mcp", "reaches only https://"),
    ]:
        error = shell.fail(f"%%interact {line}\nhi")
        assert expected in str(error) and "\n" not in str(error), str(error)


def test_a_public_server_is_declared_to_the_api(shell: Shell, server: Any) -> None:
    shell.ip.run_line_magic("config", 'InteractMagics.mcp_headers = {"Authorization": "Bearer t"}')
    shown = shell.run("%%interact --dry-run --mcp https://mcp.example.com/sse --mcp-tools search\nFind it")
    assert shown.request["tools"] == [{"type": "mcp_server", "name": "mcp.example.com", "url": "https://mcp.example.com/sse",
                                       "headers": {"Authorization": "Bearer t"},
                                       "allowed_tools": [{"mode": "auto", "tools": ["search"]}]}]  # fmt: skip


# -- the local server as an MCP client (mcp_server tools, as the API runs them) ------------------------------


def test_the_local_server_calls_an_mcp_server_for_real(steps_client: Any, http_mcp: str) -> None:
    tool = {"type": "mcp_server", "name": "glossary", "url": http_mcp}
    answer = steps_client.interactions.create(model="m", input="Use add and lookup for MCP", tools=[tool])
    calls = [s for s in answer.steps if s.type == "mcp_server_tool_call"]
    results = [s.to_dict() for s in answer.steps if s.type == "mcp_server_tool_result"]
    assert [(c.name, c.server_name, c.arguments) for c in calls] == [("add", "glossary", {"a": 1, "b": 1}),
                                                                      ("lookup", "glossary", {"term": "MCP"})]  # fmt: skip
    assert [r["result"] for r in results] == [{"result": 2}, {"result": "Model Context Protocol"}]
    assert "`add` on glossary returned" in answer.text
    only = steps_client.interactions.create(model="m", input="Use add and lookup for MCP",
                                            tools=[{**tool, "allowed_tools": [{"mode": "auto", "tools": ["lookup"]}]}])  # fmt: skip
    assert [s.name for s in only.steps if s.type == "mcp_server_tool_call"] == ["lookup"]
    failed = steps_client.interactions.create(model="m", input="Use explode", tools=[tool])
    (result,) = [s.to_dict() for s in failed.steps if s.type == "mcp_server_tool_result"]
    assert result["is_error"] is True and "Error executing tool explode" in result["result"]


def test_the_local_server_dials_only_loopback(steps_client: Any) -> None:
    # the test's network guard would fail the test on any attempt to dial out
    tool = {"type": "mcp_server", "name": "far", "url": "https://mcp.example.com/mcp"}
    answer = steps_client.interactions.create(model="m", input="Use add", tools=[tool])
    assert "not reachable from the local server (loopback only)" in answer.text
    assert not [s for s in answer.steps if s.type.startswith("mcp_server")]


def test_the_official_sdk_drives_an_mcp_server_tool(server: Any, http_mcp: str) -> None:
    genai = pytest.importorskip("google.genai")
    from google.genai import types

    sdk = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=server.base_url, api_version="v1beta"))
    answer = sdk.interactions.create(model="m", input="Use add", tools=[{"type": "mcp_server", "name": "glossary", "url": http_mcp}])
    kinds = [step.type for step in answer.steps]
    assert "mcp_server_tool_call" in kinds and "mcp_server_tool_result" in kinds


def test_a_server_side_mcp_tool_from_a_cell(shell: Shell, http_mcp: str) -> None:
    shell.ip.run_line_magic("config", 'InteractMagics.mcp_bridge = "never"')  # let the (local) server dial it
    result = shell.run(f"%%interact --mcp {http_mcp}\nUse lookup for MCP.")
    assert result.tool_calls == [] and any(s.type == "mcp_server_tool_result" for s in result.steps)
    markdown = result._repr_mimebundle_()[0]["text/markdown"]
    assert "<summary>✓ mcp server tool call · lookup → {&quot;result&quot;: &quot;Model Context Protocol&quot;}</summary>" in markdown
