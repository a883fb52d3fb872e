"""Writes notebooks/mcp_and_agents.ipynb (sources and tags); outputs come from executing it (scripts/refresh_notebooks.sh)."""

from __future__ import annotations

from _notebooks import CHECK, write_notebook
from nbformat.v4 import new_code_cell, new_markdown_cell

cells = [
    new_markdown_cell(
        "# MCP servers and agents\n\n"
        "Two ways to give a model more than a prompt: the tools of an **MCP server** (`--mcp`), and a whole "
        "**agent** such as Deep Research (`--agent`), which plans, searches, reads and writes a report over "
        "minutes while your kernel stays free. This notebook runs offline: it starts its own small MCP server, "
        "and the embedded local server plays the model and the agent."
    ),
    new_code_cell("%load_ext gemini_magics"),
    new_markdown_cell(
        "## A small MCP server\n\n"
        "Made with the official `mcp` SDK (`pip install 'gemini-magics[mcp]'`), served over streamable HTTP on "
        "loopback from a thread of this kernel. Any MCP server works the same way, also one started as a "
        "command (`--mcp 'stdio:python my_server.py'`)."
    ),
    new_code_cell(
        "import socket, threading, time\n\n"
        "import uvicorn\n"
        "from mcp.server import MCPServer\n\n"
        'pantry = MCPServer("pantry", log_level="WARNING")\n\n\n'
        "@pantry.tool()\n"
        "def stock(item: str) -> str:\n"
        '    """How much of an item the pantry holds."""\n'
        '    return {"tea": "3 tins", "rice": "1 bag"}.get(item.lower(), f"no {item} left")\n\n\n'
        "with socket.socket() as probe:  # a free port\n"
        '    probe.bind(("127.0.0.1", 0))\n'
        "    port = probe.getsockname()[1]\n"
        'mcp_server = uvicorn.Server(uvicorn.Config(pantry.streamable_http_app(), host="127.0.0.1", port=port, log_level="error"))\n'
        "threading.Thread(target=mcp_server.run, daemon=True).start()\n"
        "while not mcp_server.started:\n"
        "    time.sleep(0.05)\n"
        'pantry_url = f"http://127.0.0.1:{port}/mcp"'
    ),
    new_markdown_cell(
        "## Its tools, from a cell\n\n"
        "The Gemini API cannot reach a server on your machine, so the kernel **bridges** it: it connects once, "
        "declares the server's tools as functions, runs the model's calls and sends the results back, showing "
        "each call as a card. `{pantry_url}` in the line is the variable's value. `--mcp-tools a,b` keeps only "
        "some tools."
    ),
    new_code_cell("%%interact --mcp {pantry_url} -o answer\nUse stock for tea.", metadata=CHECK),
    new_code_cell("[(c.source, c.name, c.arguments, c.result) for c in answer.tool_calls]", metadata=CHECK),
    new_markdown_cell(
        "`%interact mcp` lists the servers this kernel is connected to (connections are reused across cells)."
    ),
    new_code_cell("%interact mcp"),
    new_markdown_cell(
        "A public `https://` server is instead declared to the API as an `mcp_server` tool, and the API "
        "calls it itself; its call and result come back as steps. `%config InteractMagics.mcp_bridge = "
        '"never"` asks for that here too: the embedded server (which dials only loopback) makes the call.'
    ),
    new_code_cell('%config InteractMagics.mcp_bridge = "never"'),
    new_code_cell(
        "%%interact --mcp {pantry_url} -o server_side\nUse stock for rice.",
    ),
    new_code_cell("[step.type for step in server_side.steps]", metadata=CHECK),
    new_code_cell('%config InteractMagics.mcp_bridge = "auto"'),
    new_markdown_cell(
        "## An agent in the background\n\n"
        "`--agent deep-research-pro-preview-12-2025` (or `deep-research-preview-04-2026`, "
        "`deep-research-max-preview-04-2026`) starts a research run and returns at once. Its cell shows the "
        "status, the elapsed time and each step as it streams (thought summaries, searches, pages read), with "
        "a **Cancel** button; when it ends, the report replaces the progress and is bound to `-o`. Real runs "
        "take 10–20 minutes; their ids are journaled on disk, so after a kernel restart `%interact wait` lists "
        "them and `%interact wait ID` re-attaches. `--agent-config` passes settings through."
    ),
    new_code_cell(
        "%%interact --agent deep-research-pro-preview-12-2025 --chain research -o report\n"
        "What makes oolong tea different from green and black tea?"
    ),
    new_markdown_cell("The kernel is free meanwhile. `%interact wait` blocks until the report is there, showing its progress."),
    new_code_cell("%interact wait"),
    new_markdown_cell("`report` is bound now, like any result: `.text` is the report, `.steps` every step the agent took."),
    new_code_cell("print(report.text)\n[step.type for step in report.steps]", metadata=CHECK),
    new_markdown_cell(
        "## Agents and models in one chain\n\n"
        "The agent's run is a turn of chain `research`: a model cell continues it through "
        "`previous_interaction_id`, e.g. to condense the report."
    ),
    new_code_cell("%%interact --chain research\nSummarise the report in one line.", metadata=CHECK),
    new_code_cell("mcp_server.should_exit = True"),
]
write_notebook("mcp_and_agents.ipynb", cells)
