"""``code_execution`` on the local server: the model's Python runs in a separate, isolated interpreter.

It is the user's own machine, so this is not a sandbox against a hostile user; it keeps the model's
code out of the kernel's and the server's process: a fresh ``python -I`` (no user site, no
environment-driven imports) in a temporary directory, with a minimal environment (no API keys), a
wall-clock limit, and output capped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

TIME_LIMIT_SECONDS = 10.0
OUTPUT_LIMIT = 20_000


@dataclass(frozen=True)
class Execution:
    output: str
    is_error: bool


def run_python(code: str, *, timeout: float = TIME_LIMIT_SECONDS) -> Execution:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONIOENCODING": "utf-8", "LANG": "C.UTF-8"}
    with tempfile.TemporaryDirectory(prefix="gemini-magics-code-") as workdir:
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", code], cwd=workdir, env=env, capture_output=True, text=True,
                timeout=timeout, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            partial = (
                (exc.stdout or b"").decode("utf-8", "replace")
                if isinstance(exc.stdout, bytes)
                else exc.stdout or ""
            )
            return Execution(
                f"{partial}\nTimeoutError: the code ran longer than {timeout:g} s and was stopped", True
            )
    output = done.stdout + (done.stderr if done.returncode else "")
    if len(output) > OUTPUT_LIMIT:
        output = output[:OUTPUT_LIMIT] + f"\n[... output cut at {OUTPUT_LIMIT} characters]"
    return Execution(output, done.returncode != 0)
