"""The reliability spec: what happens when things go wrong, through the real client or a real IPython
shell over loopback. Each case asserts that nothing is lost and nothing is duplicated.

| fault                                          | what the user gets                                       |
|------------------------------------------------|----------------------------------------------------------|
| 429 / 503 storms with Retry-After              | every call completes, within a bounded number of attempts|
| a stream cut after any event                   | the same text as an uncut run, from one POST             |
| the server killed mid-stream, then restarted   | one clear line; the chain unchanged; the next cell works |
| a server that accepts and never answers        | one line at the configured timeout                       |
| Ctrl-C while an answer streams                 | one line; connection closed; chain and -o unchanged      |
| two background runs on one chain, either order | both turns kept (one in the chain, one restorable)       |
| the key                                        | never in a traceback, a log, the server's log or a file  |
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Shell, requests_to
from gemini_magics import Client
from gemini_magics._exceptions import RateLimitError
from gemini_magics.local import LocalServer, start_server

SECRET = "AIzaSyFAULTS-never-shown-0123456789abcd"


def posts(server: LocalServer, marked: str = "") -> int:
    """Creates the server received (whose input holds ``marked``): the log keeps only the latest requests, so a
    count of them all stops growing once it is full, and a shared server's log fills."""
    return len([r for r in requests_to(server, "/interactions")
                if r["path"].endswith("/interactions") and marked in json.dumps(r.get("json"))])  # fmt: skip


# -- storms ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_a_storm_with_retry_after_still_completes_every_call(
    server: LocalServer, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_MAGICS_RETRY_CLOCK", "1")  # the server's own delay, exactly
    callers, failures = 8, 3  # every caller is refused 3 times, all at once
    with Client(base_url=server.base_url, max_retries=4) as client:
        slept: list[float] = []
        client._sleep = lambda s: (slept.append(s), time.sleep(s))  # type: ignore[func-returns-value]
        mark = f"storm-{uuid.uuid4().hex[:8]}"
        with concurrent.futures.ThreadPoolExecutor(callers) as pool:
            answers = list(pool.map(lambda i: client.interactions.create(
                model="m", input=f"{mark} {i}", extra_headers={"X-Scripted-Fail": f"{status}:{failures}:{i}"}),
                range(callers)))  # fmt: skip
    assert sorted(a.text for a in answers) == sorted(f"**Scripted reply** (turn 1) to: {mark} {i}" for i in range(callers))
    assert posts(server, mark) == callers * (failures + 1)  # bounded; nothing sent again after a success
    assert len(slept) == callers * failures and set(slept) == {0.02}  # the server's retry-after-ms, each time


def test_a_storm_longer_than_the_retry_budget_is_one_error_after_bounded_attempts(server: LocalServer) -> None:
    with Client(base_url=server.base_url, max_retries=3) as client:
        client._sleep = lambda s: None
        mark = f"never-{uuid.uuid4().hex[:8]}"
        with pytest.raises(RateLimitError):
            client.interactions.create(model="m", input=mark, extra_headers={"X-Scripted-Fail": "429:50"})
        assert posts(server, mark) == 4


# -- cut streams -----------------------------------------------------------------------------------------


def test_streams_cut_after_any_event_resume_to_the_same_text(server: LocalServer) -> None:
    with Client(base_url=server.base_url) as client:
        def read(cut: int | None) -> str:
            headers = {"X-Scripted-Deltas": "12", **({"X-Scripted-Cut-After": str(cut)} if cut else {})}
            with client.interactions.create(model="m", input="resume me", stream=True, extra_headers=headers) as stream:
                return stream.until_done().text

        whole = read(None)
        for cut in range(1, 17):
            before = server.api.creates  # a counter: the request log keeps only the latest requests
            assert read(cut) == whole, cut
            assert server.api.creates - before == 1  # resumed with GETs, never a second POST


# -- a server that dies, or never answers -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServeProcess:
    """``gemini-magics serve`` in its own process, on a fixed port, so it can be killed and restarted."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> ServeProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gemini_magics.cli", "serve", "--engine", "scripted", "--port", str(self.port),
             "--api-key", SECRET],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None and "on http://" in self.process.stdout.readline()
        return self

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServeProcess]:
    port = free_port()
    monkeypatch.setenv("GEMINI_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    process = ServeProcess(port).start()
    yield process
    process.kill()


def test_the_server_killed_mid_stream_then_restarted(served: ServeProcess, make_shell: Any) -> None:
    shell = make_shell()
    first = shell.run("%%interact\nHi, my name is Kai.")
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "50", "X-Scripted-Deltas": "100"}')
    threading.Timer(1.0, served.kill).start()
    error = shell.fail("%%interact -o never\nTell me a long story.")
    message = str(error)
    assert type(error).__name__ == "UsageError" and "\n" not in message and "cannot reach" in message
    assert [t.interaction_id for t in shell.magics.chains.turns("default")] == [first.id] and "never" not in shell.ip.user_ns
    served.start()  # same port, a fresh server: it does not know the chain's interactions
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    lost = shell.fail("%%interact\nWhat is my name?")
    assert "404" in str(lost) and "start afresh with --new" in str(lost) and "\n" not in str(lost)
    assert shell.run("%%interact --new\nHi, my name is Kai.").text == "Nice to meet you, Kai!"


@pytest.fixture
def silent_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("GEMINI_BASE_URL", f"http://127.0.0.1:{listener.getsockname()[1]}")
    yield listener
    stop.set()
    thread.join(2)
    for connection in held:
        connection.close()
    listener.close()


def test_a_server_that_never_answers_ends_the_cell_at_the_timeout(silent_server: socket.socket, make_shell: Any) -> None:
    shell = make_shell()
    shell.ip.run_line_magic("config", "InteractMagics.timeout = 1.5")
    error = shell.fail("%%interact -o never\nAnyone there?")
    assert str(error) == "no answer from the server within 1.5 s (%config InteractMagics.timeout); the chain is unchanged"
    assert shell.magics.chains.names() == [] and "never" not in shell.ip.user_ns


# -- Ctrl-C ------------------------------------------------------------------------------------------------


@pytest.mark.serial  # signals the whole test process: alone, not beside another file's tests
def test_ctrl_c_while_streaming_closes_the_connection_and_changes_nothing(shell: Shell, server: LocalServer) -> None:
    first = shell.run("%%interact -o kept\nHi, my name is Uma.")
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "100", "X-Scripted-Deltas": "60"}')
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
    error = shell.fail("%%interact -o kept\nTell me everything.")
    assert str(error).startswith("interrupted:") and "\n" not in str(error)
    assert shell.ip.user_ns["kept"] is first  # -o still holds the earlier result
    assert [t.interaction_id for t in shell.magics.chains.turns("default")] == [first.id]
    stopped_id = shell.ip.run_line_magic("interact", "last").id
    record = server.api.store.records[stopped_id]
    deadline = time.monotonic() + 10
    while record.status == "in_progress" and time.monotonic() < deadline:  # nobody reads it: the server stops it
        time.sleep(0.1)
    assert record.status == "cancelled" and record.readers == 0
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    assert shell.run("%%interact\nWhat is my name?").text == "Your name is Uma."


@pytest.mark.serial  # signals the whole test process: alone, not beside another file's tests
def test_an_interrupt_while_the_stream_is_still_opening_closes_it_when_it_opens(shell: Shell, server: LocalServer) -> None:
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Open-Delay-Ms": "1000", '
                                      '"X-Scripted-Delay-Ms": "100", "X-Scripted-Deltas": "60"}')  # fmt: skip
    before = set(server.api.store.records)
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    error = shell.fail("%%interact\nTell me everything.")
    assert str(error).startswith("interrupted") and "\n" not in str(error)
    deadline = time.monotonic() + 10
    while not (opened := set(server.api.store.records) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    record = server.api.store.records[opened.pop()]
    while record.status == "in_progress" and time.monotonic() < deadline:  # closed once it opened: cancelled
        time.sleep(0.1)
    assert record.status == "cancelled" and record.readers == 0  # not read to its end by an orphaned stream
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")


# -- background runs on one chain ------------------------------------------------------------------------


@pytest.mark.parametrize("slower", ["first", "second"])
def test_two_background_runs_on_one_chain_keep_both_turns(shell: Shell, slower: str) -> None:
    base = shell.run("%%interact --chain bg\nHi, my name is Bo.")
    delays = {"first": ("120", "10"), "second": ("10", "120")}[slower]
    runs = []
    for n, delay in enumerate(delays):
        shell.ip.run_line_magic("config", f'InteractMagics.headers = {{"X-Scripted-Delay-Ms": "{delay}", "X-Scripted-Deltas": "8"}}')
        runs.append(shell.run(f"%%interact --background --chain bg -o run{n}\nBackground task {n}"))
    for run in runs:
        assert run.done.wait(20)
    chain = [t.interaction_id for t in shell.magics.chains.turns("bg")]
    archive = [t.interaction_id for t in shell.magics.chains.archive("bg")]
    finished_first, finished_last = (runs[1], runs[0]) if slower == "first" else (runs[0], runs[1])
    assert chain == [base.id, finished_first.id]  # the first to finish joined the chain
    assert sorted(archive) == sorted([base.id, runs[0].id, runs[1].id])  # nothing lost, nothing twice
    note = finished_last.result.footer()
    assert "not added to chain bg: it moved on while this ran — kept as turn #3" in note and "restore 3" in note
    assert shell.ip.user_ns["run0"].id == runs[0].id and shell.ip.user_ns["run1"].id == runs[1].id


# -- the key ------------------------------------------------------------------------------------------------


def test_the_key_never_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_shell: Any, capsys: Any) -> None:
    import httpx

    with start_server(engine="scripted", api_key=SECRET) as keyed:
        monkeypatch.setenv("GEMINI_BASE_URL", keyed.base_url)
        monkeypatch.setenv("GEMINI_API_KEY", SECRET)
        log_file = tmp_path / "debug.log"
        handler = logging.FileHandler(log_file)
        root = logging.getLogger()
        root.addHandler(handler)
        old_level = root.level
        root.setLevel(logging.DEBUG)  # httpx and httpcore log requests at DEBUG
        try:
            shell = make_shell()
            shell.run("%%interact\nHello with a key")
            shell.ip.run_line_magic("xmode", "Verbose")  # tracebacks print local variables
            monkeypatch.setattr(httpx.Client, "send", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("wire fell off")))
            shell.ip.run_cell("%%interact\nThis one breaks deep in the client")
            shell.ip.run_cell("%%interact\nUse the key {{nothing}}")
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
            handler.close()
        shown = capsys.readouterr()
        assert "wire fell off" in shown.out + shown.err  # the Verbose traceback really was printed
        assert "<redacted>" in shown.out + shown.err  # ...with the headers it holds redacted
        for where in (shown.out, shown.err, log_file.read_text(), repr(list(keyed.api.requests))):
            assert SECRET not in where
        assert any("x-goog-api-key" not in r["headers"] for r in keyed.api.requests)
