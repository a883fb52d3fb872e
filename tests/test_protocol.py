"""Today's Interactions API as the official SDKs define it (google-genai 3.6.1): what our client and magic
send and do, and what the local server enforces and produces, checked through the official SDK where it
can drive it and through our own client otherwise."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import Shell, loopback_page, requests_to
from gemini_magics import Client
from gemini_magics.local import LocalServer

genai = pytest.importorskip("google.genai", reason="the 'test' extra installs google-genai")
from google.genai import types  # noqa: E402

HOPS = {"X-Scripted-Continuation": "2"}  # the answer comes back in three hops


def sdk_client(server: LocalServer, headers: dict[str, str] | None = None) -> Any:
    return genai.Client(api_key="k", http_options=types.HttpOptions(
        base_url=server.base_url, api_version="v1beta", headers=headers or {},
        retry_options=types.HttpRetryOptions(attempts=1)))  # fmt: skip


def creates(server: LocalServer) -> list[dict[str, Any]]:
    return [r["json"] for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions") and isinstance(r["json"], dict)]


# -- requires_continuation ---------------------------------------------------------------------------


def test_the_official_sdk_continues_the_local_servers_hops(server: LocalServer) -> None:
    plain = sdk_client(server)  # held: a client nobody holds closes its connection pool
    whole = plain.interactions.create(model="m", input="Tell me about foxes").output_text
    sdk = sdk_client(server, HOPS)
    before = len(creates(server))
    answer = sdk.interactions.create(model="m", input="Tell me about foxes")
    sent = creates(server)[before:]
    assert answer.status == "completed" and answer.output_text == whole
    assert len(sent) == 3 and [bool(s.get("continuation_token")) for s in sent] == [False, True, True]
    assert all("input" not in s and s["previous_interaction_id"] for s in sent[1:])  # stateful hops
    streamed = "".join(e.delta.text for e in sdk.interactions.create(model="m", input="Tell me about foxes", stream=True)
                       if e.event_type == "step.delta" and getattr(e.delta, "type", None) == "text")  # fmt: skip
    assert streamed == whole


@pytest.mark.parametrize("stream", [False, True])
def test_our_client_continues_hops_into_one_answer(server: LocalServer, stream: bool) -> None:
    with Client(base_url=server.base_url) as client:
        whole = client.interactions.create(model="m", input="Tell me about owls")
        before = len(creates(server))
        if stream:
            with client.interactions.create(model="m", input="Tell me about owls", stream=True, extra_headers=HOPS) as events:
                seen = list(events)
                answer = events.interaction
            assert [e.event_type for e in seen].count("interaction.created") == 1
            assert [e.event_type for e in seen].count("interaction.completed") == 1  # one answer, one end
            indexes = [e.index for e in seen if e.event_type == "step.start"]
            assert indexes == sorted(set(indexes)) == [0, 1, 2]  # later hops' steps follow the first's
        else:
            answer = client.interactions.create(model="m", input="Tell me about owls", extra_headers=HOPS)
    hops = creates(server)[before:]
    assert answer.status == "completed" and answer.text == whole.text and len(hops) == 3
    assert answer.continuation_ids[-1] == answer.id and len(answer.continuation_ids) == 3  # type: ignore[attr-defined]
    assert answer.usage is not None and answer.usage.total_output_tokens == whole.usage.total_output_tokens  # type: ignore[union-attr]


def test_a_cell_whose_answer_comes_in_hops_is_one_turn(shell: Shell, server: LocalServer) -> None:
    shell.run("%%interact\nHi, my name is Hope.")
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Continuation": "2"}')
    answer = shell.run("%%interact -o hopped\nWhat is my name?")
    assert answer.text == "Your name is Hope." and shell.ip.user_ns["hopped"] is answer
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    turns = shell.magics.chains.turns("default")
    assert len(turns) == 2 and turns[-1].interaction_ids[-1] == answer.id  # the chain goes on from the last hop
    assert shell.run("%%interact\nWhat is my name?").text == "Your name is Hope."


def test_a_continuation_token_continues_once_and_only_from_its_issuer(server: LocalServer) -> None:
    first = httpx.post(f"{server.base_url}/v1beta/interactions", headers=HOPS,
                       json={"model": "m", "input": "Tell me about bats"}).json()  # fmt: skip
    assert first["status"] == "requires_continuation" and first["continuation_token"]
    token = first["continuation_token"]
    wrong = httpx.post(f"{server.base_url}/v1beta/interactions", json={
        "model": "m", "continuation_token": token, "previous_interaction_id": "v1_someone_else"})  # fmt: skip
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_request"
    again = httpx.post(f"{server.base_url}/v1beta/interactions", json={
        "model": "m", "continuation_token": token, "previous_interaction_id": first["id"]})  # fmt: skip
    assert again.status_code == 400 and "used already" in again.json()["error"]["message"]


# -- images ------------------------------------------------------------------------------------------


def test_images_are_asked_for_and_answered_as_jpeg(server: LocalServer) -> None:
    sdk = sdk_client(server)
    made = sdk.interactions.create(model="m", input="Draw a fox",
                                   response_format=[{"type": "image", "mime_type": "image/jpeg"}])  # fmt: skip
    image = next(c for s in made.steps if s.type == "model_output" for c in s.content if c.type == "image")
    assert image.mime_type == "image/jpeg" and base64.b64decode(image.data).startswith(b"\xff\xd8\xff")
    refused = httpx.post(f"{server.base_url}/v1beta/interactions", json={
        "model": "m", "input": "Draw a fox", "response_format": [{"type": "image", "mime_type": "image/png"}]})  # fmt: skip
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request"
    assert "image/jpeg" in refused.json()["error"]["message"]


# -- error codes and retries ---------------------------------------------------------------------------


@pytest.mark.parametrize(("fail", "status", "code"), [
    ("429", 429, "rate_limit_exceeded"), ("429=quota_exceeded", 429, "quota_exceeded"), ("501", 501, "unimplemented"),
    ("503", 503, "unavailable"), ("500", 500, "api_error"), ("504", 504, "deadline_exceeded"), ("401", 401, "authentication"),
    ("402", 402, "payment_required"), ("404=model_not_found", 404, "model_not_found"),
])  # fmt: skip
def test_errors_carry_the_documented_codes(server: LocalServer, fail: str, status: int, code: str) -> None:
    sdk = sdk_client(server, {"X-Scripted-Fail": f"{fail}:1:{code}-{status}"})
    with pytest.raises(Exception) as info:
        sdk.interactions.create(model="m", input="x")
    assert getattr(info.value, "status_code", None) == status
    assert info.value.body["error"]["code"] == code  # type: ignore[attr-defined]


def test_the_servers_own_refusals_carry_the_documented_codes() -> None:
    from gemini_magics.local import start_server

    with start_server(engine="scripted", api_key="the-key") as guarded:
        url = f"{guarded.base_url}/v1beta/interactions"
        no_key = httpx.post(url, json={"model": "m", "input": "x"})
        assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "authentication"
        foreign = httpx.post(url, json={"model": "m", "input": "x"}, headers={"x-goog-api-key": "the-key", "Host": "evil.example"})
        assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "permission_denied"
        key = {"x-goog-api-key": "the-key"}
        missing = httpx.get(f"{url}/v1_nobody", headers=key)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        running = httpx.post(url, json={"model": "m", "input": "slow", "background": True},
                             headers={**key, "X-Scripted-Delay-Ms": "200"}).json()  # fmt: skip
        early = httpx.post(url, json={"model": "m", "input": "next", "previous_interaction_id": running["id"]}, headers=key)
        assert early.status_code == 400 and early.json()["error"]["code"] == "failed_precondition"


def test_an_unknown_parameter_is_refused_by_name(server: LocalServer) -> None:
    with Client(base_url=server.base_url, max_retries=0) as client, pytest.raises(Exception) as info:
        client.interactions.create(model="m", input="x", extra_body={"temprature": 0.2})
    assert info.value.status_code == 400 and info.value.code == "parameter_unknown"  # type: ignore[attr-defined]
    assert "'temprature'" in str(info.value)


@pytest.mark.parametrize(("fail", "attempts"), [
    ("429", 2), ("503", 2), ("500", 2), ("504", 2), ("429=quota_exceeded", 1), ("501", 1), ("400", 1), ("402", 1),
])  # fmt: skip
def test_only_what_another_attempt_can_fix_is_retried(server: LocalServer, fail: str, attempts: int) -> None:
    tag = f"retry-{fail}"
    with Client(base_url=server.base_url, max_retries=3) as client:
        client._sleep = lambda seconds: None
        try:
            client.interactions.create(model="m", input=tag, extra_headers={"X-Scripted-Fail": f"{fail}:1:{tag}"})
        except Exception as exc:  # not retried: the one failure is the answer
            assert attempts == 1 and getattr(exc, "status_code", None) == int(fail[:3])
    assert sum(1 for body in creates(server) if body.get("input") == tag) == attempts


def test_an_exceeded_quota_stops_an_over_run_at_once(shell: Shell, server: LocalServer) -> None:
    shell.ip.user_ns["texts"] = [f"quota row {i}" for i in range(30)]
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Fail": "429=quota_exceeded:1000:quota"}')
    before = len(creates(server))
    result = shell.run("%%interact --over texts -o out --concurrency 2 --no-cache\nSay {{row}}")
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    sent = len(creates(server)) - before
    frame = shell.ip.user_ns["out"]
    assert sent <= 2  # the rows in flight when the quota answered; nothing after, and nothing retried
    assert "not run (the API quota is exceeded; re-run when it resets)" in result.summary
    assert (frame["_status"] == "not run").sum() >= 28


def test_a_flex_row_that_times_out_is_not_sent_again(shell: Shell, server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import gemini_magics.run.rows as rows

    monkeypatch.setattr(rows, "FLEX_TIMEOUT_SECONDS", 0.5)  # minutes on the real API; a fraction of a second here
    shell.ip.user_ns["texts"] = ["flex row a", "flex row b"]
    shell.ip.run_line_magic("config", "InteractMagics.timeout = 0.5")
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Delay-Ms": "200", "X-Scripted-Deltas": "10"}')
    before = len(creates(server))
    shell.run("%%interact --over texts -o out --service-tier flex --no-cache\nSay {{row}}")
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    sent = creates(server)[before:]
    assert len(sent) == 2 and all(body["service_tier"] == "flex" for body in sent)  # each row once
    errors = list(shell.ip.user_ns["out"]["_error"])
    assert all(e.startswith("no flex answer within 0.5 s (the client's timeout); not sent again") for e in errors), errors


# -- what a turn must send back ------------------------------------------------------------------------

WEATHER = [{"type": "function", "name": "get_weather", "description": "weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]  # fmt: skip


def test_a_function_result_must_answer_a_waiting_call(server: LocalServer) -> None:
    sdk = sdk_client(server)
    asked = sdk.interactions.create(model="m", input="Call get_weather for Paris", tools=WEATHER)
    call = next(s for s in asked.steps if s.type == "function_call")
    wrong = {"type": "function_result", "name": "get_weather", "call_id": "call_nobody_made", "result": {"temp": 9}}
    with pytest.raises(Exception) as info:
        sdk.interactions.create(model="m", previous_interaction_id=asked.id, tools=WEATHER, input=[wrong])
    assert info.value.status_code == 400 and "answers no function_call waiting for one" in str(info.value)  # type: ignore[attr-defined]
    right = {**wrong, "call_id": call.id}
    done = sdk.interactions.create(model="m", previous_interaction_id=asked.id, tools=WEATHER, input=[right])
    assert done.status == "completed"
    with pytest.raises(Exception) as twice:  # answered already: nothing waits for a second result
        sdk.interactions.create(model="m", previous_interaction_id=done.id, tools=WEATHER, input=[right])
    assert twice.value.status_code == 400  # type: ignore[attr-defined]


def test_a_stateless_turn_must_send_thought_signatures_back(server: LocalServer) -> None:
    thinking = {"thinking_level": "high", "thinking_summaries": "auto"}
    question = {"type": "user_input", "content": [{"type": "text", "text": "Call get_weather for Rome"}]}
    with Client(base_url=server.base_url, max_retries=0) as client:
        asked = client.interactions.create(model="m", input=[question], tools=WEATHER, store=False, generation_config=thinking)
        thought, call = asked.steps[0].to_dict(), asked.steps[1].to_dict()
        assert thought["type"] == "thought" and thought["signature"] and call["type"] == "function_call"
        result = {"type": "function_result", "name": "get_weather", "call_id": call["id"], "result": {"temp": 20}}

        def send(*steps: dict[str, Any]) -> Any:
            return client.interactions.create(model="m", input=[question, *steps, result], tools=WEATHER, store=False,
                                              generation_config=thinking)  # fmt: skip

        with pytest.raises(Exception) as lost:  # the client lost the thought: the API refuses the call
            send(call)
        assert lost.value.status_code == 400 and "without the thought signature" in str(lost.value)  # type: ignore[attr-defined]
        unsigned = {k: v for k, v in thought.items() if k != "signature"}
        with pytest.raises(Exception) as bare:  # a summary without its signature is refused too
            send(unsigned, call)
        assert bare.value.status_code == 400 and "without its signature" in str(bare.value)  # type: ignore[attr-defined]
        assert send(thought, call).status == "completed"


def test_the_magic_sends_signed_thoughts_back_and_drops_unsigned_ones(shell: Shell, server: LocalServer) -> None:
    from gemini_magics.tools import Transcript
    from gemini_magics.types import Interaction

    shell.run('def get_weather(city: str) -> dict:\n    """The weather now."""\n    return {"city": city, "temp": 21}')
    result = shell.run("%%interact --no-store --thinking high --chain signed --tools get_weather\nUse get_weather.")
    assert result.status == "completed"
    follow_up = creates(server)[-1]
    kinds = [s["type"] for s in follow_up["input"]]
    assert kinds[:3] == ["user_input", "thought", "function_call"] and follow_up["input"][1]["signature"]
    transcript = Transcript()
    transcript.add(Interaction.model_validate({"id": "v1_x", "status": "requires_action", "steps": [
        {"type": "thought", "summary": [{"type": "text", "text": "summary only"}]},
        {"type": "function_call", "id": "c1", "name": "f", "arguments": {}}]}))  # fmt: skip
    assert [s["type"] for s in transcript.steps] == ["function_call"]  # an unsigned thought is not sent back


@pytest.mark.parametrize("how", ["event", "bare"])
def test_a_refusal_is_said_with_its_code_however_it_arrives(shell: Shell, how: str) -> None:
    first = shell.run("%%interact\nHi, my name is Rae.")
    shell.ip.run_line_magic("config", f'InteractMagics.headers = {{"X-Scripted-Refusal": "{how}"}}')
    error = shell.fail("%%interact -o refused\nSomething the model will not answer.")
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    message = str(error)
    assert "prohibited_content" in message and "blocked" in message and "\n" not in message, message
    assert "404" not in message and "refused" not in shell.ip.user_ns  # not a resume that found nothing
    assert [t.interaction_id for t in shell.magics.chains.turns("default")] == [first.id]


# -- usage and streamed tool payloads ------------------------------------------------------------------


def test_usage_reports_the_fields_the_sdk_defines(server: LocalServer) -> None:
    sdk = sdk_client(server)
    first = sdk.interactions.create(model="m", input="Hi, my name is Uli.")
    second = sdk.interactions.create(model="m", input="Search for owls and draw one", previous_interaction_id=first.id,
                                     tools=[{"type": "google_search"}],
                                     response_format=[{"type": "image", "mime_type": "image/jpeg"}, {"type": "text"}])  # fmt: skip
    usage = second.usage
    assert usage.total_cached_tokens and usage.total_cached_tokens < usage.total_input_tokens  # the chain before
    assert {m.modality: m.tokens for m in usage.output_tokens_by_modality}["image"] == 258
    assert sum(m.tokens for m in usage.input_tokens_by_modality) == usage.total_input_tokens
    assert [(g.type, g.count) for g in usage.grounding_tool_count] == [("google_search", 1)]
    assert usage.total_tool_use_tokens and usage.total_tokens == (
        usage.total_input_tokens + usage.total_output_tokens + usage.total_tool_use_tokens)


def test_tool_payloads_stream_in_their_own_deltas(server: LocalServer) -> None:
    sdk = sdk_client(server)
    events = list(sdk.interactions.create(model="m", input="Search for owls", stream=True, tools=[{"type": "google_search"}]))
    starts = {e.step.type: e.step for e in events if e.event_type == "step.start"}
    deltas = {e.delta.type: e.delta for e in events if e.event_type == "step.delta"}
    assert starts["google_search_call"].arguments.queries is None  # the step opens with its id only
    assert deltas["google_search_call"].arguments.queries and deltas["google_search_result"].result is not None
    with Client(base_url=server.base_url) as client:  # our client folds them back into whole steps
        streamed = client.interactions.create(model="m", input="Search for owls", stream=True,
                                              tools=[{"type": "google_search"}]).until_done()  # fmt: skip
        whole = client.interactions.create(model="m", input="Search for owls", tools=[{"type": "google_search"}])
    assert [s.to_dict() for s in streamed.steps] == [s.to_dict() for s in whole.steps]


def test_a_queued_start_is_followed_to_its_answer(shell: Shell, server: LocalServer) -> None:
    sdk = sdk_client(server, {"X-Scripted-Queued-Ms": "300"})
    started = sdk.interactions.create(model="m", input="queued hello", background=True)
    assert started.status == "queued"
    statuses = [e.status for e in sdk.interactions.create(model="m", input="queued stream", stream=True)
                if e.event_type == "interaction.status_update"]  # fmt: skip
    assert statuses == ["queued", "in_progress"]
    shell.ip.run_line_magic("config", 'InteractMagics.headers = {"X-Scripted-Queued-Ms": "300"}')
    run = shell.run("%%interact --background -o later\nqueued in a cell")
    result = shell.ip.run_line_magic("interact", f"wait {run.id}")
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    assert result.text.endswith("to: queued in a cell") and shell.ip.user_ns["later"].id == run.id
    assert shell.run("%%interact\nqueued no more").status == "completed"


# -- batch jobs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("end", "said"), [("failed", "failed before running its requests"),
                                           ("expired", "did not finish within 48 hours")])  # fmt: skip
def test_a_batch_job_that_fails_or_expires_says_so_and_binds_nothing(shell: Shell, end: str, said: str) -> None:
    shell.ip.user_ns["texts"] = ["one", "two", "three"]
    shell.ip.run_line_magic("config", f'InteractMagics.headers = {{"X-Scripted-Batch-End": "{end}"}}')
    run = shell.run("%%interact --over texts --batch --no-cache -o out\nSay {{row}}")
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    assert run.done.wait(30) and run.status == end
    assert run.error.startswith(f"the batch job {run.id} ended {end} (the batch job {said}); re-run the cell")
    assert "'out' was not bound" in run.error
    assert "out" not in shell.ip.user_ns


def test_batch_request_errors_carry_rpc_codes(server: LocalServer) -> None:
    job = httpx.post(f"{server.base_url}/v1beta/models/m:batchGenerateContent", json={"batch": {"input_config": {
        "requests": {"requests": [{"request": {"contents": [{"parts": [{"text": "[fail 503] no"}]}]}}]}}}}).json()  # fmt: skip
    with Client(base_url=server.base_url) as client:
        batch = client.batches.get(job["name"])
        while not batch.done:
            batch = client.batches.get(job["name"])
        (result,) = list(client.batches.results(batch))
    assert result.error == {"code": 14, "message": "scripted failure for this request", "status": "UNAVAILABLE"}


# -- citations -------------------------------------------------------------------------------------------


@pytest.fixture
def page() -> Iterator[str]:
    with loopback_page(b"<title>Owl facts</title><p>Owls hunt at night.</p>", "/owls") as url:
        yield url


def test_answers_from_pages_cite_them(allow_local: LocalServer, page: str) -> None:
    sdk = sdk_client(allow_local)
    answer = sdk.interactions.create(model="m", input=f"What does {page} say?", tools=[{"type": "url_context"}])
    block = next(c for s in answer.steps if s.type == "model_output" for c in s.content if c.type == "text")
    (citation,) = block.annotations
    assert citation.type == "url_citation" and citation.url == page and citation.title == "Owl facts"
    assert block.text[citation.start_index : citation.end_index].startswith("Owl facts: Owls hunt at night.")
    events = list(sdk.interactions.create(model="m", input=f"What does {page} say?", tools=[{"type": "url_context"}],
                                          stream=True))  # fmt: skip
    deltas = [e.delta for e in events if e.event_type == "step.delta" and e.delta.type == "text_annotation_delta"]
    assert [a.url for d in deltas for a in d.annotations] == [page]
    with Client(base_url=allow_local.base_url) as client:  # our client folds the delta onto the text
        streamed = client.interactions.create(model="m", input=f"What does {page} say?", stream=True,
                                              tools=[{"type": "url_context"}]).until_done()  # fmt: skip
    text = next(c for s in streamed.steps or [] if s.type == "model_output" for c in s.content)
    assert [a["url"] for a in text.annotations] == [page]  # type: ignore[union-attr]


# -- agents ----------------------------------------------------------------------------------------------


def test_collaborative_planning_stops_at_the_plan_until_it_is_confirmed(server: LocalServer) -> None:
    import time

    sdk = sdk_client(server)
    config = {"type": "deep-research", "collaborative_planning": True}

    def finished(interaction_id: str) -> Any:
        deadline = time.monotonic() + 20
        got = sdk.interactions.get(interaction_id)
        while got.status == "in_progress" and time.monotonic() < deadline:
            time.sleep(0.05)
            got = sdk.interactions.get(interaction_id)
        return got

    planned = finished(sdk.interactions.create(agent="deep-research-pro-preview-12-2025", agent_config=config,
                                               background=True, input="What do owls eat?").id)  # fmt: skip
    kinds = [s.type for s in planned.steps]
    assert planned.status == "completed" and planned.output_text.startswith("## Research plan")
    assert "google_search_call" not in kinds and "url_context_call" not in kinds  # no research before the go-ahead
    report = finished(sdk.interactions.create(agent="deep-research-pro-preview-12-2025", agent_config=config,
                                              background=True, previous_interaction_id=planned.id,
                                              input="Looks good, focus on barn owls").id)  # fmt: skip
    assert report.output_text.startswith("# Research report\n\n**Question:** What do owls eat?")
    assert "google_search_call" in [s.type for s in report.steps]
    assert planned.usage.total_input_tokens and report.usage.total_input_tokens  # an agent's footer never says "0 in"


@pytest.mark.parametrize(("fail", "hint"), [("404=model_not_found", "check the name given to -m"),
                                            ("429=quota_exceeded", "the API quota is used up")])  # fmt: skip
def test_a_cell_says_what_a_documented_code_means(shell: Shell, fail: str, hint: str) -> None:
    shell.ip.run_line_magic("config", f'InteractMagics.headers = {{"X-Scripted-Fail": "{fail}:1:hint-{fail}"}}')
    error = shell.fail("%%interact -o nothing\nHello")
    shell.ip.run_line_magic("config", "InteractMagics.headers = {}")
    message = str(error)
    assert f"{fail[:3]} {fail[4:]}" in message and hint in message and "\n" not in message, message
