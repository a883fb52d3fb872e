"""The official JavaScript SDK (@google/genai, installed by ``scripts/run.sh test`` into ``.jsdk/``) is a
second real client of the local server: a chain, a stream, a function call and a background poll."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from gemini_magics.local import LocalServer

ROOT = Path(__file__).resolve().parent.parent
MODULES = Path(os.environ.get("GEMINI_MAGICS_JS_SDK", ROOT / ".jsdk" / "node_modules"))


def test_the_official_javascript_sdk_drives_the_local_server(server: LocalServer) -> None:
    node = shutil.which("node")
    assert node and (MODULES / "@google" / "genai").is_dir(), (
        "the JavaScript SDK is not installed: bash scripts/run.sh test installs it into .jsdk/")
    done = subprocess.run([node, str(ROOT / "tests" / "fixtures" / "drive_js_sdk.cjs"), server.base_url],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "NODE_PATH": str(MODULES)})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["chain"] == "Your name is Juno."
    assert seen["stream"]["first"] == "interaction.created" and seen["stream"]["last"] == "interaction.completed"
    assert seen["stream"]["deltas"] > 1 and seen["stream"]["text"].endswith("to: Stream hello")
    assert seen["tool"] == {"status": "requires_action", "name": "get_weather", "args": {"city": "Oslo"},
                            "after": "completed", "text": seen["tool"]["text"]} and '"temp": 3' in seen["tool"]["text"]  # fmt: skip
    assert seen["background"]["seen"][0] == "in_progress" and seen["background"]["seen"][-1] == "completed"
    assert seen["background"]["text"].endswith("to: background hello")
    version = json.loads((MODULES / "@google" / "genai" / "package.json").read_text())["version"]
    assert version == "3.3.0"
