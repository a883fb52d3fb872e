"""The embedded server's defences, each asserted against a running server over loopback.

Who may call (key, Host, Origin, JSON content type), upload sessions, path-like ids, hostile bodies and
headers: every refusal is a clear 4xx in the API's error shape, and the server keeps serving after it.
Also retention: stored interactions and files expire and are capped, and finished logs are compacted.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gemini_magics import Client
from gemini_magics.local import LocalServer, start_server
from gemini_magics.local.store import CompactLog, Retention

KEY = "the-kernels-own-key-0123456789"


@pytest.fixture(scope="module")
def guarded() -> Iterator[LocalServer]:
    with start_server(engine="scripted", api_key=KEY) as server:
        yield server


def call(server: LocalServer, method: str, path: str, *, key: str | None = KEY, **kwargs: Any) -> httpx.Response:
    headers = {"x-goog-api-key": key} if key else {}
    headers.update(kwargs.pop("headers", {}))
    return httpx.request(method, f"{server.base_url}{path}", headers=headers, timeout=10, **kwargs)


def still_serving(server: LocalServer) -> None:
    answer = call(server, "POST", "/v1beta/interactions", json={"model": "m", "input": "still there?"})
    assert answer.status_code == 200 and "still there?" in json.dumps(answer.json())


def refused(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert words in error["message"] and isinstance(error["code"], str)


ROUTES = [
    ("GET", "/"), ("POST", "/v1beta/interactions"), ("GET", "/v1beta/interactions/v1_x"),
    ("DELETE", "/v1beta/interactions/v1_x"), ("POST", "/v1beta/interactions/v1_x/cancel"),
    ("POST", "/upload/v1beta/files"), ("GET", "/v1beta/files"), ("GET", "/v1beta/files/abc"),
    ("GET", "/v1beta/files/abc:download"), ("DELETE", "/v1beta/files/abc"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_the_key(guarded: LocalServer, method: str, path: str) -> None:
    json_body = {"model": "m", "input": "x"} if method == "POST" else None
    refused(call(guarded, method, path, key=None, json=json_body), 401, "missing or invalid API key")
    refused(call(guarded, method, path, key="wrong-key", json=json_body), 401, "missing or invalid API key")
    still_serving(guarded)


def test_the_magics_own_server_has_a_key_only_its_client_knows(make_shell: Any) -> None:
    shell = make_shell()
    shell.run("%%interact\nHello")
    backend = shell.magics.session.started_backend
    assert backend.kind == "local" and backend.server.api_key
    anonymous = httpx.post(f"{backend.base_url}/v1beta/interactions", json={"model": "m", "input": "x"})
    assert anonymous.status_code == 401
    listing = httpx.get(f"{backend.base_url}/v1beta/files")
    assert listing.status_code == 401  # nobody else can list (or download) what this kernel uploaded


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.nip.io", "10.0.0.1"])
def test_a_foreign_host_header_is_refused(guarded: LocalServer, host: str) -> None:
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own name as Host
    refused(call(guarded, "GET", "/v1beta/files", headers={"Host": host}), 403, "is not allowed")
    for fine in (f"localhost:{guarded.port}", f"127.0.0.1:{guarded.port}", "LOCALHOST"):
        assert call(guarded, "GET", "/v1beta/files", headers={"Host": fine}).status_code == 200
    still_serving(guarded)


def test_a_foreign_origin_is_refused_even_with_the_key(guarded: LocalServer) -> None:
    for origin in ("https://evil.example", "http://localhost:8888", "null"):
        refused(call(guarded, "POST", "/v1beta/interactions", headers={"Origin": origin}, json={"model": "m", "input": "x"}),
                403, "is not allowed")  # fmt: skip
    with start_server(engine="scripted", api_key=KEY, allowed_origins=frozenset({"http://localhost:8888"})) as opened:
        allowed = call(opened, "POST", "/v1beta/interactions", headers={"Origin": "http://localhost:8888/"},
                       json={"model": "m", "input": "x"})  # fmt: skip
        assert allowed.status_code == 200


def test_a_text_plain_post_is_refused_and_runs_nothing(guarded: LocalServer) -> None:
    # the "simple" cross-origin request a browser sends without a preflight
    before = len(guarded.api.store.records)
    response = call(guarded, "POST", "/v1beta/interactions", headers={"Content-Type": "text/plain"},
                    content=b'{"model": "m", "input": "run me"}')  # fmt: skip
    refused(response, 415, "application/json")
    assert len(guarded.api.store.records) == before
    refused(call(guarded, "POST", "/v1beta/interactions/v1_x/cancel", headers={"Content-Type": "text/plain"}), 415, "application/json")


def test_an_upload_session_is_valid_for_its_own_upload_only(guarded: LocalServer) -> None:
    client = Client(base_url=guarded.base_url, api_key=KEY)
    start = call(guarded, "POST", "/upload/v1beta/files", json={"file": {"display_name": "a"}},
                 headers={"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
                          "X-Goog-Upload-Header-Content-Length": "3"})  # fmt: skip
    url = start.headers["x-goog-upload-url"]
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 22 and KEY not in url  # 128 random bits; the key is never in the URL
    finalize = {"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"}
    assert httpx.post(url, content=b"abc", headers=finalize).status_code == 200
    refused(httpx.post(url, content=b"abc", headers=finalize), 404, "unknown or finished upload session")
    refused(httpx.post(url[: -len(token)] + "guessed-token", content=b"x", headers=finalize), 404, "unknown")
    assert client.files.list().__next__().display_name == "a"
    still_serving(guarded)


@pytest.mark.parametrize("path", [
    "/v1beta/interactions/..%2F..%2Fetc%2Fpasswd", "/v1beta/interactions/..", "/v1beta/files/..%2Fsecret",
    "/v1beta/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd:download", "/v1beta/interactions/v1_x%00",
])  # fmt: skip
def test_path_like_ids_are_not_found(guarded: LocalServer, path: str) -> None:
    response = call(guarded, "GET", path)
    assert response.status_code == 404 and "passwd" not in response.text.replace(path, "")


def test_malformed_and_hostile_bodies_are_clear_4xx(guarded: LocalServer) -> None:
    post = "/v1beta/interactions"
    json_type = {"Content-Type": "application/json"}
    refused(call(guarded, "POST", post, headers=json_type, content=b"{not json"), 400, "not valid JSON")
    refused(call(guarded, "POST", post, headers=json_type, content=b'{"model": "\xff\xfe"}'), 400, "not valid JSON")
    deep = b"[" * 100_000 + b"]" * 100_000
    refused(call(guarded, "POST", post, headers=json_type, content=deep), 400, "not valid JSON")
    refused(call(guarded, "POST", post, headers=json_type, content=b"x" * (21 * 1024 * 1024)), 413, "over")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for _ in range(22):
            yield b"x" * (1024 * 1024)

    refused(call(guarded, "POST", post, headers=json_type, content=chunks()), 413, "over")
    refused(call(guarded, "POST", post, json=[1, 2]), 400, "")
    still_serving(guarded)


def test_huge_headers_are_refused_and_the_server_keeps_serving(guarded: LocalServer) -> None:
    reply = b""
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as raw:
        raw.sendall(b"GET /v1beta/files HTTP/1.1\r\nHost: localhost\r\nX-Huge: " + b"a" * 200_000 + b"\r\n\r\n")
        try:
            while chunk := raw.recv(65536):
                reply += chunk
        except ConnectionResetError:  # refused by closing the connection: fine too
            pass
    assert reply == b"" or reply.split(b" ", 2)[1].startswith(b"4"), reply[:80]
    still_serving(guarded)


# -- retention and compaction ------------------------------------------------------------------------------


def test_stored_interactions_and_files_expire_and_are_capped() -> None:
    retention = Retention(interaction_ttl=0.6, max_interactions=3, file_ttl=0.6, max_files=2)
    with start_server(engine="scripted", retention=retention) as server, Client(base_url=server.base_url) as client:
        ids = [client.interactions.create(model="m", input=f"n{i}").id for i in range(5)]
        server.api.store.sweep(force=True)
        alive = [i for i in ids if httpx.get(f"{server.base_url}/v1beta/interactions/{i}").status_code == 200]
        assert alive == ids[-3:]  # past the cap, the oldest went first; evicted ids answer 404
        for n in range(3):
            client.files.upload(f"file {n}".encode(), mime_type="text/plain", display_name=f"f{n}")
        assert sorted(f.display_name for f in client.files.list()) == ["f1", "f2"]  # the oldest file went
        time.sleep(0.8)
        server.api.store.sweep(force=True)
        assert httpx.get(f"{server.base_url}/v1beta/interactions/{ids[-1]}").status_code == 404
        assert list(client.files.list()) == []


def test_finished_logs_are_compacted_and_replay_exactly(steps_client: Client, server: LocalServer) -> None:
    with steps_client.interactions.create(model="m", input="long answer", stream=True,
                                          extra_headers={"X-Scripted-Deltas": "2000"}) as stream:  # fmt: skip
        original = [e.to_dict() for e in stream]
        final = stream.interaction
    record = server.api.store.get(final.id)
    assert record is not None and isinstance(record.events, CompactLog)
    resource_size = len(json.dumps(record.resource()))
    assert record.nbytes < 4 * resource_size  # a small multiple of the final resource
    for cut in (0, 1, 5, 1000, 2003, len(original) - 1):
        replay = [e.to_dict() for e in steps_client.interactions.get(final.id, stream=True, last_event_id=original[cut]["event_id"])]
        assert replay == original[cut + 1 :]


# -- untrusted text stays text: code execution ---------------------------------------------------------------

FENCED = "A customer review:\n```python\n{code}\n```"


def code_result(server: LocalServer, code: str) -> Any:
    answer = httpx.post(f"{server.base_url}/v1beta/interactions", headers={"x-goog-api-key": KEY}, timeout=30,
                        json={"model": "m", "tools": [{"type": "code_execution"}], "input": FENCED.format(code=code)})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return next(s for s in answer.json()["steps"] if s["type"] == "code_execution_result")


@pytest.fixture
def runs_code(guarded: LocalServer) -> Iterator[LocalServer]:
    from gemini_magics.local.policy import Policy

    guarded.api.policy = Policy(code_execution=True)
    yield guarded
    guarded.api.policy = Policy()


def test_code_in_a_prompt_does_not_run_unless_the_user_turned_it_on(guarded: LocalServer, tmp_path: Any) -> None:
    marker = tmp_path / "ran"
    result = code_result(guarded, f"open({str(marker)!r}, 'w').write('pwned')")
    assert result["is_error"] and "code execution on the embedded local server is off" in result["result"]
    assert "local_code_execution = True" in result["result"] and "--allow-code-execution" in result["result"]
    assert result["x_gemini_magics_local"] == "not run: code execution is off on the embedded server"
    assert not marker.exists()


def test_the_card_says_where_code_ran_or_why_it_did_not(shell: Any, allow_local: Any) -> None:
    from gemini_magics.render.view import tool_block

    ran = shell.run("%%interact --tools code_execution\n```python\nprint(2 + 2)\n```")
    step = next(s for s in ran.steps if s.type == "code_execution_result")
    assert tool_block("k", step).title.startswith("code output · ran on this machine (")
    allow_local.api.policy = type(allow_local.api.policy)()
    refused_run = shell.run("%%interact --tools code_execution\n```python\nprint(2 + 2)\n```")
    step = next(s for s in refused_run.steps if s.type == "code_execution_result")
    assert "not run: code execution is off" in tool_block("k", step).title


def test_the_embedded_server_runs_code_only_after_the_config_says_so(make_shell: Any) -> None:
    shell = make_shell()
    off = shell.run("%%interact --tools code_execution\n```python\nprint(6 * 7)\n```")
    assert "code execution on the embedded local server is off" in off.text
    shell.ip.run_line_magic("config", "InteractMagics.local_code_execution = True")
    on = shell.run("%%interact --tools code_execution\n```python\nprint(6 * 7)\n```")
    assert "42" in on.text


def test_code_runs_isolated_without_network_secrets_or_the_servers_process(runs_code: LocalServer) -> None:
    from gemini_magics.local.tools.code_execution import isolation

    assert isolation().name == "bwrap", isolation()  # scripts/run.sh installs bubblewrap
    probe = "\n".join([
        "import os, socket",
        "print('uid', os.getuid())",
        "for path in ('/root/.bashrc', os.path.expanduser('~root/.ssh')):",
        "    try: open(path).read(); print('READ', path)",
        "    except OSError as exc: print('refused', path, type(exc).__name__)",
        "s = socket.socket(); s.settimeout(2)",
        f"try: s.connect(('127.0.0.1', {runs_code.port})); print('NET open')",
        "except OSError as exc: print('no network', type(exc).__name__)",
        "print('procs', len([p for p in os.listdir('/proc') if p.isdigit()]))",
        "print('parent env', 'GEMINI' in open(f'/proc/{os.getppid() or 1}/environ').read())",
        "print('env', sorted(os.environ))",
    ])  # fmt: skip
    result = code_result(runs_code, probe)
    out = result["result"]
    assert "uid 65534" in out and "READ" not in out and "no network" in out and "NET open" not in out, out
    assert int(re.search(r"procs (\d+)", out).group(1)) <= 3, out  # its own process tree, nothing of the host's
    assert "parent env False" in out, out  # the server's (and the kernel's) environment is out of reach
    assert "KEY" not in out.upper().split("\nENV")[-1], out  # a minimal environment: no keys
    assert "ran on this machine (bwrap: no network" in result["x_gemini_magics_local"]


def test_code_is_held_to_its_limits_and_leaves_nothing_behind(runs_code: LocalServer, tmp_path: Any) -> None:
    import glob
    import tempfile

    from gemini_magics.local.tools.code_execution import Limits, PidsCgroup, run_python

    before = set(glob.glob(f"{tempfile.gettempdir()}/gemini-magics-code-*"))
    memory = code_result(runs_code, "x = bytearray(2 * 1024**3)\nprint('allocated')")
    assert memory["is_error"] and "MemoryError" in memory["result"] and "allocated" not in memory["result"]
    forks = code_result(runs_code, "import subprocess\nps = [subprocess.Popen(['sleep', '30']) for _ in range(50)]\nprint('started', len(ps))")
    probe = PidsCgroup.make(1)
    if probe is not None:  # the machine lets us cap processes for root too: the 33rd fork fails
        probe.remove()
        assert forks["is_error"] and "Resource temporarily unavailable" in forks["result"], forks
        assert "at most 32 processes" in forks["x_gemini_magics_local"]
    else:  # no cgroup to cap them: the card does not claim one, and none outlives the run (PID namespace)
        assert "at most 32 processes" not in forks["x_gemini_magics_local"]
    assert not subprocess.run(["pgrep", "-f", "^sleep 30$"], capture_output=True).stdout  # the whole tree went
    flood = code_result(runs_code, "import sys\nwhile True: sys.stdout.write('x' * 65536)")
    assert flood["is_error"] and "printed over" in flood["result"] and len(flood["result"]) < 25_000
    # the deadline (10 s through the server; 1.5 s here, to keep the suite quick) kills the whole tree
    slow = run_python("import subprocess, time\nsubprocess.Popen(['sleep', '31'], start_new_session=True)\n"
                      "print('waiting', flush=True)\ntime.sleep(60)", Limits(seconds=1.5))  # fmt: skip
    assert slow.is_error and "ran longer than 1.5 s" in slow.output and "waiting" in slow.output
    time.sleep(0.3)
    assert not subprocess.run(["pgrep", "-f", "^sleep 31$"], capture_output=True).stdout  # not even a setsid child
    assert set(glob.glob(f"{tempfile.gettempdir()}/gemini-magics-code-*")) == before  # scratch dirs removed


# -- untrusted text stays text: fetching ----------------------------------------------------------------------


class Pages:
    """Loopback web servers: ``/secret`` (what a prompt must not reach), ``/redirect?to=URL``, ``/slow``
    (a byte every half second), counting every hit."""

    def __init__(self, host: str) -> None:
        import http.server
        import threading

        self.hits: list[str] = []
        self.abandoned: list[str] = []
        """Paths whose reader hung up before the page was whole."""
        pages = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                pages.hits.append(self.path)
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", self.path.split("to=", 1)[1])
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                if self.path.startswith("/slow"):
                    for _ in range(200):
                        try:
                            self.wfile.write(b"x")
                            self.wfile.flush()
                        except OSError:  # the fetcher gave up: as it should
                            pages.abandoned.append(self.path)
                            return
                        time.sleep(0.5)
                    return
                self.wfile.write(b"<title>Admin</title><p>secret-token-42</p>")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pages() -> Iterator[tuple[Pages, Pages]]:
    allowed, other = Pages("127.0.0.1"), Pages("127.0.0.2")
    yield allowed, other
    allowed.close()
    other.close()


def fetched(server: LocalServer, text: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    answer = call(server, "POST", "/v1beta/interactions", json={"model": "m", "tools": [{"type": "url_context"}], "input": text},
                  headers=headers or {})  # fmt: skip
    return next(s for s in answer.json()["steps"] if s["type"] == "url_context_result")["result"]  # type: ignore[no-any-return]


def test_a_prompt_cannot_make_the_server_fetch_a_host_the_user_did_not_allow(guarded: LocalServer, pages: Any) -> None:
    from gemini_magics.local.policy import Policy

    allowed, other = pages
    results = fetched(guarded, f"Summarise {other.url}/secret and {allowed.url}/secret")
    assert all(r["status"] == "error" and "not fetched: host not allowed" in r["error"] for r in results), results
    assert other.hits == [] and allowed.hits == []
    guarded.api.policy = Policy(fetch_hosts=frozenset({"127.0.0.1"}))
    try:
        # allowed: fetched; a redirect to a host that is not allowed: refused before it is followed
        results = fetched(guarded, f"Read {allowed.url}/page and {allowed.url}/redirect?to={other.url}/secret")
        assert results[0] == {"url": f"{allowed.url}/page", "status": "success", "title": "Admin"}
        assert results[1]["status"] == "error" and "redirected to" in results[1]["error"] and other.hits == []
        guarded.api.policy = Policy(fetch_hosts=frozenset({"*"}))  # any public host: still never loopback
        assert "on this machine or a private network" in fetched(guarded, f"{allowed.url}/x")[0]["error"]
    finally:
        guarded.api.policy = Policy()


def test_fetches_are_capped_in_number_and_time(guarded: LocalServer, pages: Any) -> None:
    from gemini_magics.local.policy import Policy
    from gemini_magics.local.tools.url_context import fetch

    allowed, _ = pages
    guarded.api.policy = Policy(fetch_hosts=frozenset({"127.0.0.1"}))
    try:
        urls = " ".join(f"{allowed.url}/p{n}" for n in range(300))
        results = fetched(guarded, f"Read all of these: {urls}")
        assert len(allowed.hits) == 20 and sum(r["status"] == "success" for r in results) == 20
        assert "over 20 URLs in one request" in results[-1]["error"]
    finally:
        guarded.api.policy = Policy()
    page = fetch(f"{allowed.url}/slow", Policy(fetch_hosts=frozenset({"127.0.0.1"})), timeout=1.5)
    # a deadline for the whole fetch, not per read: the page trickles, so no single read ever times out
    assert page.status == "error" and "no complete answer within 1.5 s" in page.error, page.error


def test_cancel_stops_an_agents_slow_fetch_within_a_second(guarded: LocalServer, pages: Any) -> None:
    from gemini_magics.local.policy import Policy

    allowed, _ = pages
    guarded.api.policy = Policy(fetch_hosts=frozenset({"127.0.0.1"}))
    try:
        started = call(guarded, "POST", "/v1beta/interactions", json={
            "agent": "deep-research-pro-preview-12-2025", "background": True, "input": f"Research {allowed.url}/slow"})  # fmt: skip
        run_id = started.json()["id"]
        deadline = time.monotonic() + 10
        while "/slow" not in allowed.hits and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "/slow" in allowed.hits and not allowed.abandoned
        assert call(guarded, "POST", f"/v1beta/interactions/{run_id}/cancel", json={}).status_code == 200
        # the page takes 100 s and the fetch's own deadline is far off: only Cancel hangs up on it
        while (not allowed.abandoned or call(guarded, "GET", f"/v1beta/interactions/{run_id}").json()["status"]
               == "in_progress") and time.monotonic() < deadline:  # fmt: skip
            time.sleep(0.05)
        assert allowed.abandoned == ["/slow"], "the run went on fetching after Cancel"
        assert call(guarded, "GET", f"/v1beta/interactions/{run_id}").json()["status"] == "cancelled"
    finally:
        guarded.api.policy = Policy()


# -- answers are never lost to the cache --------------------------------------------------------------------


def _rows_cell(shell: Any, n: int) -> Any:
    shell.ip.user_ns["texts"] = [f"review number {i}" for i in range(n)]
    return shell.ip.run_cell("%%interact --over texts -o out\nSay: {{row}}")


def test_a_full_disk_loses_no_answer(shell: Any, capsys: Any) -> None:
    cache = shell.magics.session.row_cache()
    cache._db.execute("pragma max_page_count = 3")  # sqlite's own "database or disk is full"
    result = _rows_cell(shell, 40)
    assert result.success, result.error_in_exec
    out = shell.ip.user_ns["out"]
    assert (out["_status"] == "ok").all() and len(out) == 40
    said = capsys.readouterr().out
    notices = [line for line in said.splitlines() if "row cache" in line]
    assert len(notices) == 1 and str(cache.path) in notices[0] and "full" in notices[0], said
    assert "they are all in the result" in notices[0] and "free some disk space" in notices[0]


def test_a_corrupt_cache_is_one_line_and_cache_clear_removes_it(shell: Any, tmp_path: Any, capsys: Any) -> None:
    shell.ip.run_line_magic("config", f"InteractMagics.cache_dir = {str(tmp_path)!r}")
    (tmp_path / "rows.sqlite3").write_bytes(b"this is not a database, it was truncated" * 100)
    result = _rows_cell(shell, 5)
    assert result.success and (shell.ip.user_ns["out"]["_status"] == "ok").all()
    said = capsys.readouterr().out
    line = next(line for line in said.splitlines() if "row cache" in line)
    assert str(tmp_path / "rows.sqlite3") in line and "%interact cache clear removes it" in line
    error = shell.fail("%interact cache")
    assert "\n" not in str(error) and str(tmp_path / "rows.sqlite3") in str(error)
    shell.run("%interact cache clear")
    assert "Traceback" not in capsys.readouterr().out
    assert _rows_cell(shell, 5).success
    assert shell.magics.session.row_cache().get_many([]) == {} and shell.magics.session.row_cache().stats()[0] == 5


def test_an_unwritable_cache_dir_is_a_notice_and_the_cache_is_private(shell: Any, tmp_path: Any, capsys: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    shell.ip.run_line_magic("config", f"InteractMagics.cache_dir = {str(blocker / 'cache')!r}")
    result = _rows_cell(shell, 3)
    assert result.success and (shell.ip.user_ns["out"]["_status"] == "ok").all()
    assert "cannot be opened" in capsys.readouterr().out
    private = tmp_path / "private"
    shell.ip.run_line_magic("config", f"InteractMagics.cache_dir = {str(private)!r}")
    assert _rows_cell(shell, 3).success
    assert private.stat().st_mode & 0o777 == 0o700
    for path in private.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path


# -- a local nuisance cannot stall the server ---------------------------------------------------------------


@pytest.mark.parametrize("parser", ["httptools", "h11"])
def test_half_sent_requests_cannot_hold_the_server(monkeypatch: pytest.MonkeyPatch, parser: str) -> None:
    from gemini_magics.local import guard

    monkeypatch.setattr(guard.Guard, "header_seconds", 1.0)
    monkeypatch.setattr(guard.Guard, "max_connections", 40)
    if parser == "h11":  # the pure-Python protocol, where httptools is not installed
        monkeypatch.setattr(guard, "guarded_protocol", lambda: guard.GuardedH11Protocol)
    else:
        assert guard.guarded_protocol().__name__ == "GuardedHttpToolsProtocol"
    with start_server(engine="scripted", api_key=KEY) as server:
        nuisance = []
        for _ in range(60):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"POST /v1beta/interactions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            nuisance.append(sock)
        answer = call(server, "POST", "/v1beta/interactions", json={"model": "m", "input": "hello"})
        assert answer.status_code in (200, 503), answer.text  # served, or refused cleanly: never left waiting
        if answer.status_code == 503:
            assert answer.json()["error"]["code"] == "unavailable"
        time.sleep(1.5)
        for sock in nuisance:
            sock.settimeout(2)
            first = sock.recv(200)
            assert first == b"" or first.startswith((b"HTTP/1.1 408", b"HTTP/1.1 503")), first
            sock.close()
        still_serving(server)


def test_a_cell_returns_even_when_its_event_loop_cannot_be_made(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from gemini_magics import _threads
    from gemini_magics._threads import SharedLoop, run_blocking

    def no_more_files() -> Any:
        raise OSError(24, "Too many open files")

    async def never_started() -> int:
        return 1

    monkeypatch.setattr(_threads, "SHARED_LOOP", SharedLoop())  # not made yet: the next cell makes it
    monkeypatch.setattr(asyncio, "new_event_loop", no_more_files)
    with pytest.raises(OSError, match="Too many open files"):
        run_blocking(never_started())
    monkeypatch.undo()
    assert run_blocking(never_started()) == 1  # and once files are there again, cells run


def test_blocking_cells_share_one_event_loop() -> None:
    import asyncio

    from gemini_magics._threads import run_blocking

    async def which_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    loops = {run_blocking(which_loop()) for _ in range(3)}
    assert len(loops) == 1 and next(iter(loops)).is_running()


def test_malformed_parameters_are_json_4xx(guarded: LocalServer) -> None:
    refused(call(guarded, "GET", "/v1beta/files?pageSize=ten"), 400, "pageSize must be a whole number")
    refused(call(guarded, "GET", "/v1beta/batches?pageToken=abc"), 400, "pageToken must be a whole number")
    refused(call(guarded, "POST", "/v1beta/interactions", json={"model": "m", "input": "x"},
                 headers={"X-Scripted-Cut-After": "soon"}), 400, "X-Scripted-Cut-After")  # fmt: skip
    start = call(guarded, "POST", "/upload/v1beta/files", json={"file": {"display_name": "a"}},
                 headers={"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"})  # fmt: skip
    chunk = httpx.post(start.headers["x-goog-upload-url"], content=b"abc",
                       headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "zero"})  # fmt: skip
    refused(chunk, 400, "X-Goog-Upload-Offset must be a whole number")
    still_serving(guarded)


def test_duplicate_file_names_are_refused(guarded: LocalServer) -> None:
    client = Client(base_url=guarded.base_url, api_key=KEY)
    meta = {"file": {"name": "files/quarterly-report", "display_name": "q"}}
    headers = {"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"}
    first = call(guarded, "POST", "/upload/v1beta/files", json=meta, headers=headers)
    httpx.post(first.headers["x-goog-upload-url"], content=b"v1",
               headers={"X-Goog-Upload-Command": "upload, finalize", "X-Goog-Upload-Offset": "0"})  # fmt: skip
    refused(call(guarded, "POST", "/upload/v1beta/files", json=meta, headers=headers), 409, "exists already")
    assert client.files.get("files/quarterly-report").size_bytes == 2  # the first is untouched


def test_batch_jobs_and_abandoned_uploads_fall_under_retention() -> None:
    retention = Retention(max_batches=2, upload_ttl=0.3)
    with start_server(engine="scripted", retention=retention) as server:
        names = []
        for n in range(4):
            job = httpx.post(f"{server.base_url}/v1beta/models/m:batchGenerateContent", json={"batch": {
                "input_config": {"requests": {"requests": [{"request": {"contents": [{"parts": [{"text": f"job {n}"}]}]}}]}}}})  # fmt: skip
            names.append(job.json()["name"])
            deadline = time.monotonic() + 10
            while not httpx.get(f"{server.base_url}/v1beta/{names[-1]}").json()["done"]:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        kept = [n for n in names if httpx.get(f"{server.base_url}/v1beta/{n}").status_code == 200]
        assert kept == names[-2:]
        httpx.post(f"{server.base_url}/upload/v1beta/files", json={"file": {}},
                   headers={"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"})  # fmt: skip
        assert len(server.api.store.uploads) == 1
        time.sleep(0.4)
        server.api.store.sweep(force=True)
        assert server.api.store.uploads == {}
