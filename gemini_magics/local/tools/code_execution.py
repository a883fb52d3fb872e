"""``code_execution`` on the local server: the model's Python, run on this machine, boxed in.

The real API runs code in Google's sandbox; here it would run on the user's machine, and the code comes
from a model reading untrusted text, so it runs only when the user turned it on (the server's
:class:`~gemini_magics.local.policy.Policy`) and then:

- in the best isolation the machine offers: ``bwrap`` (no network, its own process tree and ``/proc``,
  a read-only view of the system and the interpreter only, no home directories, an unprivileged user),
  else ``unshare`` (no network, its own process tree), else none; :func:`isolation` says which;
- under resource limits: CPU seconds, address space, file size, open files, processes;
- in its own session, killed whole at the deadline (a PID namespace takes every descendant with it);
- with a minimal environment (no keys), in a scratch directory removed afterwards;
- with its output capped while it is read (a flood is stopped, never buffered whole).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Execution", "Limits", "isolation", "run_python", "DISABLED"]

DISABLED = (
    "not run: code execution on the embedded local server is off, because the code would run on this "
    "machine. Turn it on with %config InteractMagics.local_code_execution = True "
    "(or gemini-magics serve --allow-code-execution)."
)
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
_KILL_AFTER_OUTPUT_FACTOR = 50


@dataclass(frozen=True)
class Limits:
    seconds: float = 10.0
    """Wall-clock time; the whole process tree is killed then."""
    memory_bytes: int = 1024 * 1024 * 1024
    file_bytes: int = 16 * 1024 * 1024
    processes: int = 32
    open_files: int = 256
    output_chars: int = 20_000


@dataclass(frozen=True)
class Execution:
    output: str
    is_error: bool
    note: str
    """Where and how it ran, for the card: ``ran on this machine (bwrap: ...)``."""


@dataclass(frozen=True)
class Isolation:
    name: str
    """``bwrap``, ``unshare`` or ``none``."""
    description: str

    def command(self, interpreter: list[str], workdir: str) -> list[str]:
        if self.name == "bwrap":
            return _bwrap_command(workdir) + interpreter
        if self.name == "unshare":
            return ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", *interpreter]
        return interpreter


def _interpreter_dirs() -> list[str]:
    dirs = {sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent.parent)}
    return sorted(d for d in dirs if d and os.path.isdir(d))


def _bwrap_command(workdir: str) -> list[str]:
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--uid", "65534", "--gid", "65534",
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]  # fmt: skip
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _interpreter_dirs():
        args += ["--ro-bind", path, path]
    return args + ["--bind", workdir, workdir, "--chdir", workdir]


@functools.lru_cache(maxsize=1)
def isolation() -> Isolation:
    """The strongest isolation that works here (tried once per process)."""
    with tempfile.TemporaryDirectory(prefix="gemini-magics-probe-") as workdir:
        candidates = []
        if shutil.which("bwrap"):
            candidates.append(Isolation("bwrap", "bwrap: no network, own process tree, read-only system, no home directories"))
        if shutil.which("unshare"):
            candidates.append(Isolation("unshare", "unshare: no network, own process tree"))
        for candidate in candidates:
            probe = candidate.command([sys.executable, "-I", "-c", "pass"], workdir)
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                if subprocess.run(probe, cwd=workdir, capture_output=True, timeout=20).returncode == 0:
                    return candidate
    return Isolation("none", "no isolation available: resource limits only")


class PidsCgroup:
    """A pids cgroup of its own for one run, where the machine lets us make one (cgroup v1 ``pids`` or a
    delegated v2 tree): a hard cap on processes that holds for root too, unlike ``RLIMIT_NPROC``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def make(cls, limit: int) -> PidsCgroup | None:
        for parent in _pids_parents():
            path = parent / f"gemini-magics-{os.getpid()}-{time.monotonic_ns()}"
            try:
                path.mkdir()
            except OSError:
                continue
            try:
                (path / "pids.max").write_text(str(limit))
                return cls(path)
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
        return None

    def join(self) -> None:
        """In the child, before exec (a plain write: safe between fork and exec)."""
        fd = os.open(str(self.path / "cgroup.procs"), os.O_WRONLY)
        try:
            os.write(fd, b"0")  # "0": the writing process itself
        finally:
            os.close(fd)

    def remove(self) -> None:
        deadline = time.monotonic() + 2
        while True:
            try:
                self.path.rmdir()
                return
            except OSError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.02)


def _pids_parents() -> list[Path]:
    """Where this process's pids cgroup lives, v1 then v2."""
    parents = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, relative = line.split(":", 2)
            if "pids" in controllers.split(","):
                parents.append(Path("/sys/fs/cgroup/pids") / relative.lstrip("/"))
            elif controllers == "":
                for root in (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup")):
                    here = root / relative.lstrip("/")
                    with contextlib.suppress(OSError):
                        if "pids" in (here / "cgroup.subtree_control").read_text().split():
                            parents.append(here)
    return [p for p in parents if p.is_dir()]


def _set_limits(limits: Limits, cgroup: PidsCgroup | None) -> None:
    """In the child, before exec: the resource limits (inherited by everything it starts)."""
    import resource

    if cgroup is not None:
        cgroup.join()

    cpu = int(limits.seconds) + 1
    for which, value in (
        (resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, limits.memory_bytes),
        (resource.RLIMIT_FSIZE, limits.file_bytes), (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CORE, 0),
    ):  # fmt: skip
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(which, (value, value))
    if os.getuid() != 0:  # root is exempt from RLIMIT_NPROC; the process count is watched instead
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes + _own_processes(), -1))


def _own_processes() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                count += entry.stat().st_uid == uid
    return count


def _descendants(pid: int) -> int:
    """How many processes descend from ``pid`` (Linux; 0 where /proc is not there)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    count, stack = 0, list(children.get(pid, []))
    while stack:
        child = stack.pop()
        count += 1
        stack += children.get(child, [])
    return count


class _Output:
    """Reads a pipe to its end, keeping at most ``limit`` characters; says when the flood is too big."""

    def __init__(self, pipe: int, limit: int) -> None:
        self.kept = bytearray()
        self.total = 0
        self.limit = limit
        self.flooded = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True, name="gemini-magics-code-output")
        self._thread.start()

    def _read(self, pipe: int) -> None:
        while chunk := os.read(pipe, 65536):
            self.total += len(chunk)
            room = self.limit * 4 - len(self.kept)  # up to 4 bytes a character
            if room > 0:
                self.kept += chunk[:room]
            if self.total > self.limit * _KILL_AFTER_OUTPUT_FACTOR:
                self.flooded.set()
        os.close(pipe)

    def text(self) -> str:
        self._thread.join(2)
        text = bytes(self.kept).decode("utf-8", "replace")
        if len(text) > self.limit or self.total > len(self.kept):
            text = text[: self.limit] + f"\n[... output cut at {self.limit} characters]"
        return text


def run_python(code: str, limits: Limits | None = None) -> Execution:
    """Run ``code`` with ``python -I`` under :func:`isolation` and ``limits``; what it printed."""
    limits = limits or Limits()
    box = isolation()
    workdir = tempfile.mkdtemp(prefix="gemini-magics-code-")
    try:
        os.chmod(workdir, 0o777)  # the sandbox's unprivileged user writes here
        Path(workdir, "main.py").write_text(code, encoding="utf-8")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
               "PYTHONIOENCODING": "utf-8", "LANG": "C.UTF-8"}  # fmt: skip
        read_end, write_end = os.pipe()
        cgroup = PidsCgroup.make(limits.processes + 2)  # and bwrap's two
        process = subprocess.Popen(
            box.command([sys.executable, "-I", "main.py"], workdir), cwd=workdir, env=env,
            stdin=subprocess.DEVNULL, stdout=write_end, stderr=write_end, start_new_session=True,
            preexec_fn=lambda: _set_limits(limits, cgroup),  # noqa: PLW1509 - setrlimit and one write, no locks
        )  # fmt: skip
        os.close(write_end)
        output = _Output(read_end, limits.output_chars)
        stopped = _supervise(process, output, limits)
        text = output.text()
        if cgroup is not None:
            cgroup.remove()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    capped = f", at most {limits.processes} processes" if cgroup is not None else ""
    note = f"ran on this machine ({box.description}{capped})"
    if stopped:
        return Execution(f"{text}\n{stopped}".lstrip("\n"), True, note)
    return Execution(text, process.returncode != 0, note)


def _supervise(process: subprocess.Popen[bytes], output: _Output, limits: Limits) -> str | None:
    """Wait for the run; kill its whole tree at the deadline, on an output flood or past the process
    cap. Why it was stopped, or None when it ended by itself."""
    deadline = time.monotonic() + limits.seconds
    reason = None
    while process.poll() is None:
        if time.monotonic() > deadline:
            reason = f"TimeoutError: the code ran longer than {limits.seconds:g} s and was stopped"
        elif output.flooded.is_set():
            reason = f"the code printed over {limits.output_chars * _KILL_AFTER_OUTPUT_FACTOR} characters and was stopped"
        elif _descendants(process.pid) > limits.processes + 2:  # bwrap/unshare and the interpreter
            reason = f"the code started more than {limits.processes} processes and was stopped"
        if reason:
            _kill_tree(process)
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(0.05)
    return reason


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)  # its session; bwrap/unshare take the PID namespace along
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)
