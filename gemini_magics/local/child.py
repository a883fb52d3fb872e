"""The embedded server in a child process of the kernel.

A native crash, a hang or a memory blow-up in an engine (llama.cpp, code the user let run) is the
child's, never the kernel's. The key travels in the child's environment (never argv, which ``ps``
shows every local user); the child's stdin is a pipe only the parent holds: policy changes arrive on
it as JSON lines, and its end-of-file (the kernel exited, even by ``kill -9``) stops the child.

Run as ``python -m gemini_magics.local.child``; it prints one JSON line (``ready``) on stdout and then
serves until its stdin closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import IO, Any

from .._constants import ENGINE_ENV_VAR, SERVER_KEY_ENV_VAR
from .policy import Policy

__all__ = ["EngineInfo", "ServerProcess", "ServerDied", "exit_reason"]

POLICY_ENV_VAR = "GEMINI_MAGICS_POLICY"
START_TIMEOUT_SECONDS = 60.0
LOG_TAIL_BYTES = 4096
POLICY_ACK_SECONDS = 5.0

_SIGNAL_WORDS = {
    "SIGILL": "illegal instruction",
    "SIGSEGV": "segmentation fault",
    "SIGBUS": "bus error",
    "SIGABRT": "abort",
    "SIGFPE": "arithmetic fault",
    "SIGKILL": "killed (out of memory, or kill -9)",
    "SIGTERM": "terminated",
}
_NATIVE_FAULTS = frozenset({"SIGILL", "SIGSEGV", "SIGBUS", "SIGABRT", "SIGFPE"})


class ServerDied(RuntimeError):
    """The child server is gone; ``str()`` is the one line saying how."""


@dataclass(frozen=True)
class EngineInfo:
    """What the kernel needs to know of the child's engine (the engine itself lives in the child)."""

    name: str
    description: str
    default_max_tokens: int
    served_by: str


def exit_reason(returncode: int, engine: str) -> str:
    """How a child that exited with ``returncode`` stopped, in words: ``illegal instruction in the SmolLM2
    engine (llama.cpp)``, ``killed (out of memory, or kill -9)``, ``exit status 3``."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"
    words = _SIGNAL_WORDS.get(name, name)
    if name in _NATIVE_FAULTS and engine == "smollm2":
        words += " in the SmolLM2 engine (llama.cpp)"
    return words


class ServerProcess:
    """A running child server: ``base_url``, ``engine``, ``alive``, ``set_policy()``, ``stop()``."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        ready: dict[str, Any],
        log: IO[bytes],
        policy: Policy,
        api_key: str,
        lines: _Lines,
    ) -> None:
        self.process = process
        self.policy = policy
        self.api_key = api_key
        self.base_url: str = ready["base_url"]
        self.engine = EngineInfo(ready["engine"], ready["description"], int(ready["default_max_tokens"]),
                                 ready["served_by"])  # fmt: skip
        self._log = log
        self._lock = threading.Lock()
        self._lines = lines
        self._sent = 0
        """Policy lines sent; the child acknowledges each by its number."""

    @classmethod
    def start(
        cls, *, engine: str | None, api_key: str, policy: Policy, timeout: float = START_TIMEOUT_SECONDS
    ) -> ServerProcess:
        return Starting(engine=engine, api_key=api_key, policy=policy).ready(timeout)

    @property
    def engine_description(self) -> str:
        return self.engine.description

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def death(self, wait: float = 0.0) -> str | None:
        """None while the child runs; else one line saying how it stopped. ``wait`` gives a child that is
        dying (its connections just broke) that long to be reaped."""
        try:
            code = self.process.wait(wait) if wait else self.process.poll()
        except subprocess.TimeoutExpired:
            return None
        if code is None:
            return None
        return f"the embedded server stopped: {exit_reason(code, self.engine.name)}"

    def set_policy(self, policy: Policy) -> bool:
        """Send the child a new policy (code execution, fetch hosts) through the private pipe, and wait until it
        is in force: the cell right after ``%config InteractMagics.local_fetch_hosts = …`` must see it. False when
        the child did not say so in time (a dead child's death is reported elsewhere)."""
        with self._lock, contextlib.suppress(OSError, ValueError):
            if policy == self.policy or self.process.stdin is None:
                return policy == self.policy
            self.policy = policy
            self._sent += 1
            self.process.stdin.write((json.dumps({"policy": policy.to_dict(), "n": self._sent}) + "\n").encode())
            self.process.stdin.flush()
            return self._acknowledged(self._sent, POLICY_ACK_SECONDS)
        return False

    def _acknowledged(self, n: int, timeout: float) -> bool:
        """Whether the child says policy line ``n`` is applied within ``timeout`` seconds. A late answer to an
        earlier line (one that timed out) is passed over, never taken for this one's."""
        wanted = f"applied {n}\n".encode()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self._lines.next(left)
            if line == wanted:
                return True
            if not line:
                return False
        return False

    def stop(self) -> None:
        with self._lock:
            stdin, self.process.stdin = self.process.stdin, None
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.close()  # end-of-file: the child stops itself
        try:
            self.process.wait(3)
        except subprocess.TimeoutExpired:
            _kill(self.process)
        for stream in (self.process.stdout, self._log):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class Starting:
    """A child server spawned but not yet known to be ready: started early (at ``%load_ext``), so its
    imports overlap the kernel's own work on the first cell."""

    def __init__(self, *, engine: str | None, api_key: str, policy: Policy) -> None:
        env = dict(os.environ)
        env[SERVER_KEY_ENV_VAR] = api_key
        env[POLICY_ENV_VAR] = policy.to_json()
        if engine:
            env[ENGINE_ENV_VAR] = engine
        self.engine = engine
        self.api_key = api_key
        self.policy = policy
        self._log = tempfile.TemporaryFile(prefix="gemini-magics-server-")  # noqa: SIM115 - the child's stderr, for its life
        self._process = subprocess.Popen(
            [sys.executable, "-m", "gemini_magics.local.child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._log, env=env, close_fds=True,
            # its own session: Kernel > Interrupt signals the kernel's process group, and must not reach it
            start_new_session=True,
        )  # fmt: skip
        self._lines = _Lines(self._process)

    def ready(self, timeout: float = START_TIMEOUT_SECONDS) -> ServerProcess:
        """The running server, once it said it listens; RuntimeError with its last words otherwise."""
        ready = _read_ready(self._lines, timeout)
        if ready is None:
            _kill(self._process)
            raise RuntimeError(_startup_failure(self._process, self._log, self.engine or ""))
        return ServerProcess(self._process, ready, self._log, self.policy, self.api_key, self._lines)

    def discard(self) -> None:
        """Not needed after all (the environment changed before the first cell)."""
        with contextlib.suppress(OSError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        _kill(self._process)
        self._log.close()


class _Lines:
    """The child's stdout (its ready line, then policy acknowledgements), read by one thread for the child's life:
    a wait that times out leaves no reader behind to swallow a later line."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._queue: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        threading.Thread(target=self._read, args=(process,), daemon=True, name="gemini-magics-server-lines").start()

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            for line in process.stdout:
                self._queue.put(line)
        self._queue.put(b"")

    def next(self, timeout: float) -> bytes:
        """The next line, or ``b""`` if the child is gone or said nothing for ``timeout`` seconds."""
        try:
            line = self._queue.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return b""
        if not line:
            self._queue.put(b"")  # the child is gone: every later wait hears so at once
        return line


def _read_ready(lines: _Lines, timeout: float) -> dict[str, Any] | None:
    """The child's ready line, or None if it died or stayed silent for ``timeout`` seconds."""
    try:
        ready = json.loads(lines.next(timeout))
    except ValueError:
        return None
    return ready if isinstance(ready, dict) and "base_url" in ready else None


def _startup_failure(process: subprocess.Popen[bytes], log: IO[bytes], engine: str) -> str:
    code = process.poll()
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - LOG_TAIL_BYTES))
    tail = [line for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
    said = tail[-1].strip() if tail else "no message"
    how = exit_reason(code, engine) if code is not None else "no answer in time"
    return f"{said} ({how})"


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


# -- the child's side -------------------------------------------------------------------------------


def _follow_parent(api: Any, acks: IO[bytes]) -> None:
    """Apply policy lines from the parent, saying each is applied; at end-of-file (the parent is gone) exit at once."""
    for line in sys.stdin.buffer:
        n: Any = None
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
            message = json.loads(line)
            n = message.get("n")
            api.policy = Policy.from_dict(message["policy"])
        with contextlib.suppress(OSError):
            acks.write(f"applied {n}\n".encode())
    os._exit(0)


def main() -> int:
    from . import create_server

    key = os.environ.pop(SERVER_KEY_ENV_VAR, None)
    policy = Policy.from_json(os.environ.pop(POLICY_ENV_VAR, "{}"))
    if not key:
        print(f"gemini-magics: the child server needs {SERVER_KEY_ENV_VAR}", file=sys.stderr)
        return 2
    server = create_server(api_key=key, policy=policy)
    engine = server.api.engine
    ready = {"base_url": server.base_url, "engine": engine.name, "description": engine.description,
             "default_max_tokens": engine.default_max_tokens, "served_by": engine.served_by, "pid": os.getpid()}  # fmt: skip
    out = sys.stdout
    out.write(json.dumps(ready) + "\n")
    out.flush()
    # after the ready line the pipe carries only policy acknowledgements: a chatty library writing to stdout must
    # neither fill it (nobody reads it between changes) nor pass for an acknowledgement
    acks = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    threading.Thread(target=_follow_parent, args=(server.api, acks), daemon=True, name="gemini-magics-parent").start()
    warm = getattr(engine, "warm", None)
    if warm is not None:  # load the model while the kernel gets its first cell ready
        threading.Thread(target=warm, daemon=True, name="gemini-magics-warm").start()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
