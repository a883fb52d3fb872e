"""The local server's semantics, each checked over real loopback HTTP."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import pytest

from gemini_magics import Client
from gemini_magics._exceptions import AuthenticationError, BadRequestError, NotFoundError
from gemini_magics.local import LocalServer, start_server


def post(server, body, **headers):  # type: ignore[no-untyped-def]
    return httpx.post(f"{server.base_url}/v1beta/interactions", json=body, headers=headers, timeout=30)


def test_store_defaults_to_true_and_interactions_can_be_fetched(steps_client: Client) -> None:
    created = steps_client.interactions.create(model="m", input="hi")
    assert created.store is True or created.store is None
    assert steps_client.interactions.get(created.id).text == created.text


def test_previous_interaction_must_exist_and_be_finished(steps_client: Client) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        steps_client.interactions.create(model="m", input="x", previous_interaction_id="v1_nope")
    running = steps_client.interactions.create(
        model="m", input="slow", background=True, extra_headers={"X-Scripted-Delay-Ms": "100"}
    )
    with pytest.raises(BadRequestError, match="still in_progress"):
        steps_client.interactions.create(model="m", input="x", previous_interaction_id=running.id)
    steps_client.interactions.cancel(running.id)


def test_store_false_cannot_be_fetched_or_continued(steps_client: Client) -> None:
    unstored = steps_client.interactions.create(model="m", input="Hi, my name is Zed.", store=False)
    assert unstored.text
    with pytest.raises(NotFoundError):
        steps_client.interactions.get(unstored.id)
    with pytest.raises(NotFoundError):
        steps_client.interactions.create(model="m", input="again", previous_interaction_id=unstored.id)


def test_an_answer_nobody_watches_runs_unpaced_but_still_takes_its_scripted_time(steps_client: Client, server) -> None:  # type: ignore[no-untyped-def]
    """An unstored answer returned whole: the engine does not sleep through each delta in a worker thread (its
    pacing is owed and waited out on the event loop), yet the caller waits as long as the headers ask."""
    import time

    headers = {"X-Scripted-Delay-Ms": "100", "X-Scripted-Deltas": "3"}
    started = time.monotonic()
    unwatched = steps_client.interactions.create(model="m", input="Hi, my name is Una.", store=False, extra_headers=headers)
    assert time.monotonic() - started >= 0.3 and unwatched.text == "Nice to meet you, Una!"
    started = time.monotonic()
    streamed = list(steps_client.interactions.create(model="m", input="Hi, my name is Una.", store=False, stream=True,
                                                     extra_headers=headers))  # fmt: skip
    assert time.monotonic() - started >= 0.3
    deltas = [e for e in streamed if getattr(e, "event_type", "") == "step.delta"]
    assert "".join(e.delta.text for e in deltas if getattr(e.delta, "type", "") == "text") == unwatched.text


def test_only_a_plain_unwatched_answer_runs_on_the_event_loop(steps_client: Client, server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A worker thread's GIL hand-off cost milliseconds a request under load (--over rows): a text answer
    nobody watches is made on the event loop; anything that may block (tools, media, a stream, a stored
    answer) still goes to a worker."""
    workers = server.api._workers
    handed: list[str] = []
    real_submit = workers.submit
    monkeypatch.setattr(workers, "submit", lambda job: (handed.append("worker"), real_submit(job)))
    plain = steps_client.interactions.create(model="m", input="Hi, my name is Una.", store=False)
    structured = steps_client.interactions.create(model="m", input="Rate it: 4 stars", store=False,
                                                  response_format={"type": "object", "properties": {"stars": {"type": "integer"}}})  # fmt: skip
    assert handed == [] and plain.text == "Nice to meet you, Una!" and structured.text.startswith("{")
    steps_client.interactions.create(model="m", input="Hi, my name is Una.", store=True)
    list(steps_client.interactions.create(model="m", input="Hi, my name is Una.", store=False, stream=True))
    steps_client.interactions.create(model="m", input="Draw a kite", store=False, response_format={"type": "image"})
    weather = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    steps_client.interactions.create(model="m", input="What is get_weather saying?", store=False, tools=[weather])
    assert handed == ["worker"] * 4


def test_background_with_store_false_is_rejected(server) -> None:  # type: ignore[no-untyped-def]
    response = post(server, {"model": "m", "input": "x", "background": True, "store": False})
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": "invalid_request", "message": "background=true requires store=true"}
    }


def test_background_returns_at_once_and_cancel_works(steps_client: Client) -> None:
    started = steps_client.interactions.create(model="m", input="long job", background=True,
                                               extra_headers={"X-Scripted-Delay-Ms": "200", "X-Scripted-Deltas": "50"})  # fmt: skip
    assert started.status == "in_progress" and not started.steps  # returned before any of its 50 deltas
    assert steps_client.interactions.get(started.id).status == "in_progress"
    cancelled = steps_client.interactions.cancel(started.id)
    assert cancelled.status == "cancelled"
    with pytest.raises(BadRequestError, match="already cancelled"):
        steps_client.interactions.cancel(started.id)
    with pytest.raises(BadRequestError, match="ended cancelled"):
        steps_client.interactions.create(model="m", input="next", previous_interaction_id=started.id)


def test_every_event_has_an_id_and_streams_resume_from_any_of_them(steps_client: Client) -> None:
    with steps_client.interactions.create(model="m", input="ids please", stream=True) as stream:
        events = list(stream)
    ids = [e.event_id for e in events]
    assert all(ids) and len(set(ids)) == len(ids)
    for cut in (1, len(events) // 2, len(events) - 1):
        replay = list(
            steps_client.interactions.get(events[0].interaction.id, stream=True, last_event_id=ids[cut - 1])
        )  # type: ignore[union-attr]
        assert [e.event_id for e in replay] == ids[cut:]


def test_interaction_echoes_config_and_counts_usage(steps_client: Client) -> None:
    tools = [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}]
    first = steps_client.interactions.create(model="m", input="one")
    second = steps_client.interactions.create(
        model="gemini-x", input="two words", system_instruction="Be brief.", tools=tools,
        generation_config={"temperature": 0.1, "seed": 3}, previous_interaction_id=first.id,
    )  # fmt: skip
    fetched = steps_client.interactions.get(second.id)
    assert fetched.model == "gemini-x" and fetched.system_instruction == "Be brief."
    assert fetched.tools[0].name == "f" and fetched.generation_config.seed == 3  # type: ignore[union-attr,index]
    assert fetched.previous_interaction_id == first.id
    usage = fetched.usage
    assert usage and usage.total_input_tokens and usage.total_output_tokens
    assert usage.total_tokens == usage.total_input_tokens + usage.total_output_tokens
    assert usage.total_input_tokens > first.usage.total_input_tokens  # type: ignore[union-attr,operator]  # the chain is seen


def test_engine_sees_the_whole_chain_including_function_calls(steps_client: Client) -> None:
    tools = [
        {
            "type": "function",
            "name": "add",
            "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
        }
    ]
    first = steps_client.interactions.create(
        model="m", input="Hi, my name is Ada. Then call add with 2", tools=tools
    )
    call = first.function_calls[0]
    second = steps_client.interactions.create(model="m", previous_interaction_id=first.id, tools=tools,
                                              input=[{"type": "function_result", "call_id": call.id, "name": "add", "result": 4}])  # fmt: skip
    third = steps_client.interactions.create(
        model="m", previous_interaction_id=second.id, input="What is my name?"
    )
    assert "4" in second.text and third.text == "Your name is Ada."
    chain = steps_client.interactions.get(third.id, include_input=True)
    assert chain.previous_interaction_id == second.id


def test_api_key_is_enforced() -> None:
    with start_server(engine="scripted", api_key="sekret") as server:
        with pytest.raises(AuthenticationError):
            Client(base_url=server.base_url, max_retries=0).interactions.create(model="m", input="x")
        assert (
            Client(base_url=server.base_url, api_key="sekret").interactions.create(model="m", input="x").text
        )
        assert (
            httpx.post(
                f"{server.base_url}/v1/interactions?key=sekret", json={"model": "m", "input": "x"}
            ).status_code
            == 200
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "must be a JSON object"),
        ({"input": "x"}, "missing field 'model'"),
        ({"model": "m"}, "missing field 'input'"),
        ({"model": "m", "agent": "a", "input": "x"}, "not both"),
        (
            {"model": "m", "input": "x", "generation_config": {"temperature": "hot"}},
            "generation_config.temperature",
        ),
        ({"model": "m", "input": "x", "tools": [{"name": "f"}]}, "tools"),
        ({"model": "m", "input": 5}, "input"),
    ],
)
def test_malformed_bodies_get_400_naming_the_field(server, body, message) -> None:  # type: ignore[no-untyped-def]
    response = post(server, body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"
    assert message in response.json()["error"]["message"]


def test_non_json_bodies_unknown_fields_versions_and_size(server) -> None:  # type: ignore[no-untyped-def]
    raw = httpx.post(
        f"{server.base_url}/v1beta/interactions",
        content=b"{nope",
        headers={"content-type": "application/json"},
    )
    assert raw.status_code == 400 and "not valid JSON" in raw.json()["error"]["message"]
    unknown = post(server, {"model": "m", "input": "x", "future_field": {"a": 1}, "service_tier": "flex"})
    assert unknown.status_code == 400 and unknown.json()["error"] == {
        "code": "parameter_unknown", "message": "unknown parameter: 'future_field'"}  # as the API answers
    assert post(server, {"model": "m", "input": "x", "service_tier": "flex"}).status_code == 200
    for version in ("v1", "v1alpha"):
        assert (
            httpx.post(
                f"{server.base_url}/{version}/interactions", json={"model": "m", "input": "x"}
            ).status_code
            == 200
        )
    assert (
        httpx.post(f"{server.base_url}/v2/interactions", json={"model": "m", "input": "x"}).status_code == 404
    )
    huge = httpx.post(f"{server.base_url}/v1beta/interactions", content=b"x" * (21 * 1024 * 1024))
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "invalid_request"


def test_legacy_schema_for_old_revisions_and_old_sdk_user_agents(server) -> None:  # type: ignore[no-untyped-def]
    for headers in ({"Api-Revision": "2026-05-07"}, {"User-Agent": "google-genai-sdk/1.55.0 gl-python/3.11"}):
        body = post(server, {"model": "m", "input": "x"}, **headers).json()
        assert "outputs" in body and "steps" not in body and body["role"] == "model"
    assert "steps" in post(server, {"model": "m", "input": "x"}).json()


def test_scripted_failures_with_retry_after(server) -> None:  # type: ignore[no-untyped-def]
    assert post(server, {"model": "m", "input": "x"}, **{"X-Scripted-Fail": "503:1"}).status_code == 503
    first = post(server, {"model": "m", "input": "x"}, **{"X-Scripted-Fail": "429:2"})
    assert first.status_code == 429 and first.headers["retry-after"] == "1"
    assert post(server, {"model": "m", "input": "x"}, **{"X-Scripted-Fail": "429:2"}).status_code == 429
    assert post(server, {"model": "m", "input": "x"}, **{"X-Scripted-Fail": "429:2"}).status_code == 200


def test_fifty_concurrent_streams_all_complete(server) -> None:  # type: ignore[no-untyped-def]
    results: list[str] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            with Client(base_url=server.base_url, max_retries=0) as client:
                stream = client.interactions.create(model="m", input=f"client {i}", stream=True,
                                                    extra_headers={"X-Scripted-Deltas": "20", "X-Scripted-Delay-Ms": "5"})  # fmt: skip
                results.append(stream.until_done().status or "")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and results == ["completed"] * 50


def test_stopping_a_foreground_stream_cancels_it_on_the_server(steps_client: Client) -> None:
    stream = steps_client.interactions.create(model="m", input="stop me", stream=True,
                                              extra_headers={"X-Scripted-Deltas": "200", "X-Scripted-Delay-Ms": "20"})  # fmt: skip
    for _ in zip(range(5), stream, strict=False):
        pass
    interaction_id = stream.interaction_id
    stream.close()
    deadline = time.monotonic() + 10
    while (
        steps_client.interactions.get(interaction_id).status == "in_progress" and time.monotonic() < deadline
    ):  # type: ignore[arg-type]
        time.sleep(0.1)
    assert steps_client.interactions.get(interaction_id).status == "cancelled"  # type: ignore[arg-type]


def test_cli_serve_prints_its_url_and_serves_until_stopped() -> None:
    process = subprocess.Popen([sys.executable, "-m", "gemini_magics.cli", "serve", "--engine", "scripted", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert "on http://127.0.0.1:" in line and "scripted" in line
        base_url = line.split(" on ", 1)[1].split()[0]
        # without --api-key it makes one, prints it, and lets nobody in without it
        key_line = process.stdout.readline()  # type: ignore[union-attr]
        assert key_line.startswith("gemini-magics: generated API key")
        key = key_line.rsplit(": ", 1)[1].strip()
        with pytest.raises(AuthenticationError):
            Client(base_url=base_url, max_retries=0).interactions.create(model="m", input="no key")
        answer = Client(base_url=base_url, api_key=key).interactions.create(model="m", input="over the CLI")
        assert "over the CLI" in answer.text
    finally:
        process.terminate()
        process.wait(10)
    assert process.returncode is not None


def test_cli_serve_without_auth_says_so() -> None:
    process = subprocess.Popen([sys.executable, "-m", "gemini_magics.cli", "serve", "--engine", "scripted", "--port", "0", "--no-auth"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        base_url = process.stdout.readline().split(" on ", 1)[1].split()[0]  # type: ignore[union-attr]
        assert "WARNING: --no-auth" in process.stdout.readline()  # type: ignore[union-attr]
        assert Client(base_url=base_url).interactions.create(model="m", input="open").text
    finally:
        process.terminate()
        process.wait(10)


def test_get_cancel_delete_and_streamed_get_in_both_generations(client: Client, generation: str) -> None:
    done = client.interactions.create(model="m", input="for replay")
    fetched = client.interactions.get(done.id)
    assert fetched.schema_generation == generation and fetched.text == done.text
    with client.interactions.get(done.id, stream=True) as full:
        events = list(full)
    replay = list(client.interactions.get(done.id, stream=True, last_event_id=events[1].event_id))
    assert [e.event_id for e in replay] == [e.event_id for e in events[2:]]
    running = client.interactions.create(
        model="m", input="slow", background=True, extra_headers={"X-Scripted-Delay-Ms": "200"}
    )
    assert client.interactions.cancel(running.id).status == "cancelled"
    client.interactions.delete(done.id)
    with pytest.raises(NotFoundError):
        client.interactions.get(done.id)


def test_concurrent_requests_keep_their_own_pacing(server) -> None:  # type: ignore[no-untyped-def]
    counts: dict[int, int] = {}

    def one(deltas: int) -> None:
        with Client(base_url=server.base_url, max_retries=0) as client:
            stream = client.interactions.create(model="m", input="pace", stream=True,
                                                extra_headers={"X-Scripted-Deltas": str(deltas), "X-Scripted-Delay-Ms": "5"})  # fmt: skip
            counts[deltas] = sum(1 for e in stream if e.event_type == "step.delta")

    threads = [threading.Thread(target=one, args=(n,)) for n in (7, 31, 53)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert counts == {7: 7, 31: 31, 53: 53}


def test_answers_on_a_kept_alive_connection_are_not_held_back_by_nagle(server: LocalServer) -> None:
    """Every accepted connection has TCP_NODELAY: without it an answer written in two pieces (headers,
    body) waited for the client's delayed ACK, 40 ms a request on a kept-alive connection."""
    import socket

    with httpx.Client(base_url=server.base_url) as http:
        for _ in range(2):  # the second request reuses the connection
            assert http.post("/v1beta/interactions", json={"model": "m", "input": "hi"}).status_code == 200
        protocols = list(server._server.server_state.connections)
        assert protocols
        for protocol in protocols:
            sock = protocol.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_engine_runs_reuse_idle_worker_threads() -> None:
    from gemini_magics.local.workers import Workers

    workers = Workers(name="test-worker", idle_seconds=0.3)
    done = threading.Semaphore(0)
    names: list[str] = []
    for _ in range(20):  # one after the other: the same worker takes each
        workers.submit(lambda: (names.append(threading.current_thread().name), done.release()))
        assert done.acquire(timeout=5)
        time.sleep(0.01)  # the worker is back to idle
    assert len(set(names)) == 1
    gate = threading.Event()
    for _ in range(3):  # three at once, all blocked: three workers
        workers.submit(lambda: (gate.wait(5), done.release()))
    gate.set()
    for _ in range(3):
        assert done.acquire(timeout=5)
    time.sleep(1.0)  # past the idle time: every worker left
    assert not [t for t in threading.enumerate() if t.name.startswith("test-worker")]


def test_unknown_model_ids_get_the_apis_404_and_known_ones_their_output_cap(server: LocalServer) -> None:
    with Client(base_url=server.base_url) as client:
        with pytest.raises(NotFoundError) as caught:
            client.interactions.create(model="gemini-3-flsh-preview", input="hi")
        assert caught.value.code == "model_not_found" and "gemini-3-flsh-preview" in str(caught.value)
        with pytest.raises(BadRequestError, match="over gemini-3-flash-preview's limit of 65536"):
            client.interactions.create(model="gemini-3-flash-preview", input="hi",
                                       generation_config={"max_output_tokens": 100_000_000})  # fmt: skip
        for known in ("gemini-2.5-pro", "models/gemini-3-flash-preview", "scripted", "m"):  # m: from the environment
            assert client.interactions.create(model=known, input="hi").status == "completed"


def test_a_server_takes_more_model_ids_by_config() -> None:
    with start_server(engine="scripted", models=["my-tuned-model"]) as server, Client(base_url=server.base_url) as client:
        assert client.interactions.create(model="my-tuned-model", input="hi").status == "completed"
        with pytest.raises(NotFoundError):
            client.interactions.create(model="my-other-model", input="hi")


def test_a_typo_in_the_model_is_a_one_line_error_in_a_cell(shell: Any) -> None:
    error = shell.fail("%%interact -m gemini-3-flsh-preview\nHi")
    assert "404 model_not_found" in str(error) and "check the name given to -m" in str(error) and "\n" not in str(error)
    assert shell.magics.chains.names() == []
