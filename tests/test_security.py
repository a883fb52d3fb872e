"""The embedded server's defences, each asserted against a running server over loopback.

Who may call (key, Host, Origin, JSON content type), upload sessions, path-like ids, hostile bodies and
headers: every refusal is a clear 4xx in the API's error shape, and the server keeps serving after it.
Also retention: stored interactions and files expire and are capped, and finished logs are compacted.
"""

from __future__ import annotations

import json
import socket
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
    assert backend.kind == "local" and backend.server.api.api_key
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
