"""The local engine runs on every machine and never takes the kernel down.

- the installed llama.cpp holds no instruction the portable baseline excludes (AVX-512, AMX), whatever
  CPU builds or runs it: read from the libraries' disassembly and from llama.cpp's own system info;
- the engine is probed in a child before the model loads, and a broken one is one line with the fix;
- the embedded server is a child process: killed mid-stream (SIGILL as a miscompiled engine would,
  SIGKILL as the OOM killer does) the cell ends in one line, the kernel's variables live on, the chain
  resets with a notice and the next cell starts a fresh server; it exits with its kernel, even on
  ``kill -9``; and its key is never on a command line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import loopback_page
from gemini_magics.local.engines import probe

# grep -E patterns: AVX-512 (zmm registers, opmask registers) and AMX (tile registers and instructions) on x86-64; SVE on arm64
FORBIDDEN = {
    "x86_64": re.compile(r"%zmm[0-9]|%k[1-7]\b|%tmm[0-9]|\btile(loadd|loaddt1|stored|zero|release)\b|\btdpb|\bldtilecfg\b"),
    "aarch64": re.compile(r"\bz[0-9]+\.[bhsdq]\b|\bptrue\b|\bwhilelo\b"),
}


def _engine_libraries() -> list[Path]:
    spec = importlib.util.find_spec("llama_cpp")
    assert spec is not None and spec.submodule_search_locations, "llama-cpp-python is not installed"
    root = Path(next(iter(spec.submodule_search_locations)))
    libraries = {p.resolve() for p in root.rglob("*.so*") if p.is_file()}
    assert libraries, f"no engine libraries under {root}"
    return sorted(libraries)


def test_the_installed_engine_has_no_instruction_the_baseline_excludes() -> None:
    machine = platform.machine().replace("amd64", "x86_64").replace("arm64", "aarch64")
    pattern = FORBIDDEN[machine]
    assert shutil.which("objdump"), "objdump (binutils) is needed to read the engine's instructions"
    found: dict[str, list[str]] = {}
    for library in _engine_libraries():
        # objdump's listing is hundreds of MB for libllama: grep reads it, Python gets only the hits
        objdump = subprocess.Popen(["objdump", "-d", "--no-show-raw-insn", str(library)], stdout=subprocess.PIPE)
        grep = subprocess.run(["grep", "-E", "-m", "3", "-e", pattern.pattern,
                               "-e", "file format"], stdin=objdump.stdout, capture_output=True, text=True)  # fmt: skip
        assert objdump.stdout is not None
        objdump.stdout.close()
        objdump.wait()
        lines = grep.stdout.splitlines()
        assert any("file format" in line for line in lines), f"objdump read nothing from {library}"
        hits = [line.strip() for line in lines if pattern.search(line)]
        if hits:
            found[library.name] = hits
    assert not found, f"instructions outside the portable baseline: {found}"


def test_llama_cpp_reports_no_avx512_or_amx_features() -> None:
    info = subprocess.run([sys.executable, "-c", "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    enabled = set(re.findall(r"(\w+) = 1", info))
    assert enabled, info
    assert not {f for f in enabled if f.startswith(("AVX512", "AMX"))}, info
    if platform.machine() in ("x86_64", "amd64"):
        assert {"AVX2", "FMA", "F16C"} <= enabled, info  # the baseline is really there


def test_the_probe_runs_the_engine_once_per_build(tmp_path: Path) -> None:
    probe.probe_engine(cache_dir=tmp_path)
    assert probe.known_to_run(tmp_path)
    remembered = json.loads((tmp_path / "engine-probe.json").read_text())
    assert list(remembered.values()) == ["ok"]
    children: list[Any] = []
    real_run = probe.subprocess.run
    probe.subprocess.run = lambda *a, **k: children.append(a) or real_run(*a, **k)  # type: ignore[assignment]
    try:
        probe.probe_engine(cache_dir=tmp_path)  # remembered: no child this time
    finally:
        probe.subprocess.run = real_run  # type: ignore[assignment]
    assert children == []


def test_an_engine_that_dies_of_an_illegal_instruction_is_one_line_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_shell: Any
) -> None:
    # the probe's child dies exactly as llama.cpp built for another CPU does: SIGILL on its first token
    monkeypatch.setattr(probe, "_PROBE", "import os, signal; os.kill(os.getpid(), signal.SIGILL)")
    monkeypatch.setenv("GEMINI_MAGICS_CACHE_DIR", str(tmp_path))
    with pytest.raises(probe.EngineBroken) as broken:
        probe.probe_engine(cache_dir=tmp_path)
    message = str(broken.value)
    assert "illegal instruction in the SmolLM2 engine (llama.cpp)" in message and "\n" not in message
    assert "bash scripts/run.sh rebuild-engine" in message and "GEMINI_MAGICS_ENGINE=scripted" in message
    assert not probe.known_to_run(tmp_path)

    monkeypatch.setenv("GEMINI_MAGICS_ENGINE", "smollm2")
    shell = make_shell()
    shell.ip.user_ns["precious"] = [1, 2, 3]
    error = shell.fail("%%interact\nHello")
    assert type(error).__name__ == "UsageError" and "illegal instruction" in str(error) and "\n" not in str(error)
    assert shell.magics.session.started_backend is None  # no server was started on a broken engine
    monkeypatch.setenv("GEMINI_MAGICS_ENGINE", "scripted")
    assert "Hello" in shell.run("%%interact\nHello").text
    assert shell.ip.user_ns["precious"] == [1, 2, 3]


def _slow(shell: Any) -> None:
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "50", "X-Scripted-Deltas": "100"}')


@pytest.mark.parametrize(("signum", "said"), [(signal.SIGILL, "illegal instruction"),
                                               (signal.SIGKILL, "killed (out of memory, or kill -9)")])  # fmt: skip
def test_the_kernel_survives_its_server_dying_mid_stream(make_shell: Any, signum: int, said: str) -> None:
    shell = make_shell()
    shell.run("%%interact\nHi, my name is Ada.")
    shell.ip.user_ns["precious"] = {"rows": 3}
    server = shell.magics.session.started_backend.server
    _slow(shell)
    threading.Timer(0.8, os.kill, (server.pid, signum)).start()
    error = shell.fail("%%interact -o never\nTell me a long story.")
    message = str(error)
    assert type(error).__name__ == "UsageError" and "\n" not in message, message
    assert message.startswith(f"the embedded server stopped: {said}"), message
    assert "chain(s) default start afresh" in message and "next cell starts a fresh server" in message
    assert shell.ip.user_ns["precious"] == {"rows": 3} and "never" not in shell.ip.user_ns
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    after = shell.run("%%interact\nWhat is my name?")
    assert after.text == "You have not told me your name yet."  # a fresh server, a fresh chain
    fresh = shell.magics.session.started_backend.server
    assert fresh.pid != server.pid and fresh.alive


def test_a_server_that_died_between_cells_is_noticed_before_the_next_one(make_shell: Any, capsys: Any) -> None:
    shell = make_shell()
    shell.run("%%interact\nHi, my name is Bo.")
    server = shell.magics.session.started_backend.server
    os.kill(server.pid, signal.SIGKILL)
    server.process.wait(5)
    capsys.readouterr()
    assert shell.run("%%interact\nWhat is my name?").text == "You have not told me your name yet."
    out = capsys.readouterr().out
    assert "the embedded server stopped: killed (out of memory, or kill -9); chain(s) default start afresh" in out


KERNEL = textwrap.dedent("""
    import os, sys, time
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "gemini_magics")
    ip.run_cell("%%interact\\nHello")
    server = ip._gemini_magics.session.started_backend.server
    print("SERVER", server.pid, server.api_key, flush=True)
    time.sleep(60)
""")


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
            if stat and stat.rsplit(")", 1)[1].split()[0] == "Z":
                return True  # exited; a zombie only waits for its (dead) parent's reaper
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_the_server_exits_with_its_kernel_even_on_kill_9_and_never_shows_its_key() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY")}
    kernel = subprocess.Popen([sys.executable, "-c", KERNEL], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=env)  # fmt: skip
    try:
        assert kernel.stdout is not None
        line = ""
        while not line.startswith("SERVER "):
            line = kernel.stdout.readline()
            assert line, "the kernel stopped before it started its server"
        _, pid_text, key = line.split()
        pid = int(pid_text)
        listing = subprocess.run(["ps", "-eo", "pid,args", "ww"], capture_output=True, text=True).stdout
        assert str(pid) in listing and key not in listing  # no key on any command line
        assert key not in Path(f"/proc/{pid}/cmdline").read_text()
        os.kill(kernel.pid, signal.SIGKILL)
        kernel.wait(5)
        assert _gone(pid, within=5), "the embedded server outlived its kernel"
    finally:
        kernel.kill()


def test_serve_takes_its_key_from_the_environment_or_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file\n")
    for extra_args, env_key, key in ((["--api-key-file", str(key_file)], None, "from-a-file"),
                                     ([], "from-the-env", "from-the-env")):  # fmt: skip
        env = {**os.environ, "GEMINI_MAGICS_ENGINE": "scripted"}
        if env_key:
            env["GEMINI_MAGICS_SERVER_KEY"] = env_key
        served = subprocess.Popen([sys.executable, "-m", "gemini_magics.cli", "serve", *extra_args],
                                  stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
        try:
            assert served.stdout is not None
            line = served.stdout.readline()
            url = re.search(r"http://127\.0\.0\.1:\d+", line)
            assert url, line
            said = served.stdout.readline()
            assert key not in said and "the API key is the one from" in said
            assert key not in Path(f"/proc/{served.pid}/cmdline").read_text()
            assert httpx.get(f"{url.group(0)}/v1beta/files", headers={"x-goog-api-key": key}).status_code == 200
            assert httpx.get(f"{url.group(0)}/v1beta/files", headers={"x-goog-api-key": "nope"}).status_code == 401
        finally:
            served.terminate()
            served.wait(5)
    help_text = subprocess.run([sys.executable, "-m", "gemini_magics.cli", "serve", "--help"],
                               capture_output=True, text=True).stdout  # fmt: skip
    assert "GEMINI_MAGICS_SERVER_KEY" in help_text and "--api-key-file" in help_text


def test_the_request_log_keeps_its_shape_and_is_bounded_in_bytes() -> None:
    from gemini_magics.local import start_server

    with start_server(engine="scripted", api_key="k") as server:
        server.api.requests.max_bytes = 2 * 1024 * 1024
        blob = "A" * (3 * 1024 * 1024)
        for n in range(5):
            body = {"model": "m", "input": [{"type": "text", "text": f"row {n}"},
                                            {"type": "image", "mime_type": "image/png", "data": blob}]}  # fmt: skip
            httpx.post(f"{server.base_url}/v1beta/interactions", json=body, headers={"x-goog-api-key": "k"}, timeout=30)
        logged = [r for r in server.api.requests if r["path"].endswith("/interactions")]
        assert len(logged) == 5
        assert logged[-1]["json"]["input"][0] == {"type": "text", "text": "row 4"}
        assert logged[-1]["json"]["input"][1]["data"] == f"<{len(blob)} characters, not kept>"
        assert len(json.dumps(list(server.api.requests))) < 64 * 1024


@pytest.mark.timeout(60)  # a hang guard: retrying against nothing would take minutes
def test_an_over_run_whose_server_dies_stops_at_once_and_keeps_what_was_answered(make_shell: Any) -> None:
    shell = make_shell()
    shell.run("%%interact\nHello")
    server = shell.magics.session.started_backend.server
    shell.ip.user_ns["texts"] = [f"row {i}" for i in range(60)]
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "20", "X-Scripted-Deltas": "10"}')
    threading.Timer(1.0, os.kill, (server.pid, signal.SIGKILL)).start()
    error = shell.fail("%%interact --over texts -o out --concurrency 4\nSay {{row}}")
    message = str(error)
    assert message.startswith("the embedded server stopped: killed (out of memory, or kill -9)") and "\n" not in message
    assert "answered rows are cached" in message and "re-run the cell to send only the rest" in message
    frame = shell.magics.session.last_result.frame
    answered = int((frame["_status"] == "ok").sum())
    assert 0 < answered < 60 and "out" not in shell.ip.user_ns
    assert set(frame.loc[frame["_status"] != "ok", "_error"]) <= {
        "not run: the server stopped", message.split(";")[0]}  # every other row says why, once
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    shell.run("%%interact --over texts -o out --concurrency 4\nSay {{row}}")  # a fresh server; only the rest is sent
    fresh = shell.magics.session.started_backend.server
    assert fresh.pid != server.pid and (shell.ip.user_ns["out"]["_status"] == "ok").all()


def test_a_fetch_host_allowed_in_one_cell_is_in_force_in_the_very_next(make_shell: Any) -> None:
    """The policy travels to the child server over a pipe; the kernel waits until the child has applied it, so the
    cell right after ``%config`` never meets the old policy (under load it used to, now and then)."""
    shell = make_shell()
    with loopback_page(b"<title>Tea notes</title><h1>Oolong</h1>", "/tea") as url:
        for round_ in range(4):
            allowed = round_ % 2 == 0
            shell.ip.run_line_magic("config", f"InteractMagics.local_fetch_hosts = {['127.0.0.1'] if allowed else []!r}")
            result = shell.run(f"%%interact --tools url_context\nSummarise {url}")
            (fetched,) = [s for s in result.steps if s.type == "url_context_result"]
            assert (fetched.result[0]["status"] == "success") is allowed, (round_, fetched.result)
    assert shell.magics.session.started_backend.server.alive


def test_a_policy_change_waits_for_the_child_to_apply_it_but_never_forever(make_shell: Any, monkeypatch: Any) -> None:
    from gemini_magics.local import child
    from gemini_magics.local.policy import Policy

    shell = make_shell()
    shell.run("%%interact\nHi.")
    server = shell.magics.session.started_backend.server
    assert server.set_policy(Policy(fetch_hosts=frozenset({"127.0.0.1"}))) is True  # the child said "applied"
    monkeypatch.setattr(child, "POLICY_ACK_SECONDS", 0.5)
    os.kill(server.pid, signal.SIGSTOP)  # a child that cannot answer: the kernel waits half a second, no more
    try:
        started = time.monotonic()
        assert server.set_policy(Policy()) is False
        assert time.monotonic() - started < 3
    finally:
        os.kill(server.pid, signal.SIGCONT)
    # the late answer to the line that timed out is passed over: the next change waits for its own
    assert server.set_policy(Policy(fetch_hosts=frozenset({"localhost"}))) is True
    assert server.set_policy(Policy(fetch_hosts=frozenset({"127.0.0.1"}))) is True
    assert shell.run("%%interact\nHi again.").text and server.alive
