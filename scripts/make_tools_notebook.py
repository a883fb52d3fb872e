"""Writes notebooks/tools.ipynb (sources and tags); outputs come from executing it (scripts/refresh_notebooks.sh)."""

from __future__ import annotations

from _notebooks import CHECK, write_notebook
from nbformat.v4 import new_code_cell, new_markdown_cell

cells = [
    new_markdown_cell(
        "# Tools from a cell\n\n"
        "`--tools` lets the model call Python functions from your kernel, and Gemini's built-in tools "
        "(`google_search`, `code_execution`, `url_context`). The magic runs the whole loop for you: the model asks "
        "for calls, the kernel runs them (several at once when the model asks for several), sends the results "
        "back, and repeats until the model answers. Every call shows up as a card while it runs and in the saved "
        "output. This notebook runs offline on the embedded server's scripted engine."
    ),
    new_code_cell("%load_ext gemini_magics"),
    new_markdown_cell(
        "## Your functions are the declarations\n\n"
        "Type hints (pydantic models, `Literal`, `Optional`, defaults, lists, dicts) become the JSON schema; the "
        "docstring's summary and `Args:` section (Google or NumPy style) become the descriptions. Arguments are "
        "validated against the signature before your function runs."
    ),
    new_code_cell(
        "from typing import Literal\n\n"
        "import pandas as pd\n"
        "from pydantic import BaseModel\n\n\n"
        "class Place(BaseModel):\n"
        "    city: str\n"
        '    country: str = "FR"\n\n\n'
        'def get_weather(place: Place, unit: Literal["c", "f"] = "c") -> dict:\n'
        '    """The current weather at a place.\n\n'
        "    Args:\n"
        "        place: Where to look.\n"
        "        unit: Celsius or Fahrenheit.\n"
        '    """\n'
        '    return {"city": place.city, "temp": 21 if unit == "c" else 70, "sky": "clear"}\n\n\n'
        "async def get_population(city: str) -> int:\n"
        '    """How many people live in a city (async functions work too)."""\n'
        "    return 2_100_000\n\n\n"
        "def read_sensor(sensor_id: int) -> float:\n"
        '    """A sensor that is offline: its error goes back to the model."""\n'
        '    raise ConnectionError(f"sensor {sensor_id} is offline")\n\n\n'
        "def recent_sales() -> pd.DataFrame:\n"
        '    """Last week\'s sales: a DataFrame goes back as a table."""\n'
        '    return pd.DataFrame({"day": ["mon", "tue", "wed"], "units": [12, 15, 9]})'
    ),
    new_code_cell("%%interact --tools get_weather -o weather\nWhat is the weather like? Use get_weather.", metadata=CHECK),
    new_markdown_cell("The result keeps each call: its name, validated arguments, result or error, and duration."),
    new_code_cell("[(c.name, c.arguments, c.result, c.error) for c in weather.tool_calls]", metadata=CHECK),
    new_markdown_cell(
        "## Several calls, failures and tables\n\n"
        "Calls the model makes in one step run concurrently. A function that raises does not end the cell: the "
        "model gets the error as the result. Results that are not JSON (a DataFrame, an image) are sent the "
        "way `{{references}}` are."
    ),
    new_code_cell(
        "%%interact --tools get_population,read_sensor,recent_sales\n"
        "Use get_population, read_sensor and recent_sales, then sum it up.",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## Structured output with tools\n\n`--schema` and `--tools` together: the loop runs, then the final answer "
        "is validated into `.data`."
    ),
    new_code_cell(
        "class Report(BaseModel):\n    city: str\n    temp: int\n    sky: str\n"
    ),
    new_code_cell(
        "%%interact --tools get_weather --schema Report -o report\nUse get_weather, then fill in the report.",
        metadata=CHECK,
    ),
    new_code_cell("report.data", metadata=CHECK),
    new_markdown_cell(
        "## Keeping the state in the kernel\n\n"
        "With `--no-store` nothing is stored on the server: after each step the whole history (your prompt, the "
        "model's calls with their thought signatures, the results) is sent again, as the API's client-side-state "
        "form requires."
    ),
    new_code_cell(
        "%%interact --no-store --thinking low --chain local --tools get_weather\nUse get_weather.", metadata=CHECK
    ),
    new_markdown_cell(
        "## Built-in tools\n\n"
        "`code_execution` runs the model's Python. The real API runs it in Google's sandbox; the embedded server "
        "would run it on *this* machine, and prompts carry untrusted text (a review with a code block in it), so "
        "it is off until you turn it on:"
    ),
    new_code_cell(
        "%%interact --tools code_execution\nRun this and tell me the result:\n"
        "```python\nprint(sum(n * n for n in range(10)))\n```",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "Turned on, it runs in a separate process, never in your kernel: isolated as well as the machine allows "
        "(bubblewrap: no network, a read-only system, no home directories), with limits on time, memory, files, "
        "processes and output. The card says where it ran."
    ),
    new_code_cell("%config InteractMagics.local_code_execution = True"),
    # the card names this machine's isolation (bwrap, unshare or none), so the answer is checked on its own
    new_code_cell(
        "%%interact --tools code_execution -o ran\nRun this and tell me the result:\n"
        "```python\nprint(sum(n * n for n in range(10)))\n```"
    ),
    new_code_cell("print(ran.text)", metadata=CHECK),
    new_markdown_cell(
        "`url_context` reads the pages a prompt names. The embedded server really fetches them, but only from hosts "
        "you allow in `InteractMagics.local_fetch_hosts` (names, `*.suffix`, `*` for any public host; loopback and "
        "private hosts only when named). Here, a small page served from this notebook on loopback:"
    ),
    new_code_cell(
        "import http.server, threading\n\n\n"
        "class Page(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200)\n"
        '        self.send_header("Content-Type", "text/html")\n'
        "        self.end_headers()\n"
        '        self.wfile.write(b"<title>Tea notes</title><h1>Oolong</h1><p>A semi-oxidised tea from Taiwan.</p>")\n\n'
        "    def log_message(self, *args):\n"
        "        pass\n\n\n"
        'site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)\n'
        "threading.Thread(target=site.serve_forever, daemon=True).start()\n"
        'url = f"http://127.0.0.1:{site.server_address[1]}/tea"'
    ),
    new_code_cell('%config InteractMagics.local_fetch_hosts = ["127.0.0.1"]'),
    new_code_cell("%%interact --tools url_context -o read\nWhat does {{url}} say?"),
    new_code_cell("print(read.text.split(': ', 1)[1])", metadata=CHECK),
    new_markdown_cell(
        "`google_search` needs the internet; offline, the embedded server says so instead of making results up."
    ),
    new_code_cell("%%interact --tools google_search\nWhat is in the news about tea?", metadata=CHECK),
    new_markdown_cell(
        "## Asking before a call runs\n\n"
        "A function with side effects can ask first: `@tool(confirm=True)` shows **Approve** / **Deny** on the "
        "call's card (a prompt in a terminal) and waits; a denial goes back to the model as the result. "
        "`description=` replaces the docstring's summary.\n\n"
        "```python\n"
        "from gemini_magics import tool\n\n"
        '@tool(confirm=True, description="Delete a file from the shared drive.")\n'
        "def delete_file(path: str) -> str:\n"
        "    ...\n"
        "```\n\n"
        "`--max-steps N` (default 10) caps the rounds of calls, and `%config InteractMagics.tool_timeout = 30` "
        "the seconds one call may take."
    ),
    new_code_cell("site.shutdown()"),
]
write_notebook("tools.ipynb", cells)
