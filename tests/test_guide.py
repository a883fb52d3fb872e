"""The public guide's examples, written with this client, on recorded fixtures and on the local server.

Each scenario is one function taking a client; it runs against fixtures of both schema generations
(through an ``httpx.MockTransport``) and over loopback against the embedded server in both generations.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gemini_magics import Client
from gemini_magics.types import FunctionCall, TextContent, Thought, ThoughtSummaryDelta

FIXTURES = Path(__file__).parent / "fixtures"
TOOLS = [{"type": "function", "name": "get_weather", "description": "Weather for a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]  # fmt: skip


class FixtureTransport(httpx.MockTransport):
    """Answers requests, in order, with the named fixture files; records every request."""

    def __init__(self, generation: str, names: list[str]) -> None:
        self.generation = generation
        self.queue = list(names)
        self.requests: list[httpx.Request] = []
        super().__init__(self.respond)

    def respond(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        name = self.queue.pop(0)
        path = FIXTURES / self.generation / name
        if name.endswith(".sse"):
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=path.read_bytes()
            )
        return httpx.Response(200, headers={"content-type": "application/json"}, content=path.read_bytes())

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) if r.content else {} for r in self.requests]


def fixture_client(generation: str, names: list[str]) -> tuple[Client, FixtureTransport]:
    transport = FixtureTransport(generation, names)
    client = Client(api_key="test-key", http_client=httpx.Client(transport=transport))
    client._sleep = lambda s: None
    return client, transport


# -- the scenarios -------------------------------------------------------------------------------


def text_prompt(client: Client) -> str:
    interaction = client.interactions.create(model="gemini-3-flash-preview", input="Tell me a short joke.")
    assert interaction.status == "completed"
    assert isinstance(interaction.outputs[-1], TextContent)
    assert interaction.outputs[-1].text == interaction.text and interaction.text
    assert interaction.usage is not None and interaction.usage.total_tokens
    return interaction.id


def two_turn_chain(client: Client) -> tuple[str, str]:
    first = client.interactions.create(model="gemini-3-flash-preview", input="Hi, my name is Phil.")
    second = client.interactions.create(
        model="gemini-3-flash-preview", input="What is my name?", previous_interaction_id=first.id
    )
    assert "Phil" in second.outputs[-1].text  # type: ignore[union-attr]
    return first.id, second.id


def stateless_history(client: Client, generation: str) -> None:
    if generation == "legacy":
        history: list[dict[str, Any]] = [
            {"role": "user", "content": "Hi, my name is Phil."},
            {"role": "model", "content": "Nice to meet you, Phil!"},
            {"role": "user", "content": "What is my name?"},
        ]
    else:
        history = [
            {"type": "user_input", "content": [{"type": "text", "text": "Hi, my name is Phil."}]},
            {"type": "model_output", "content": [{"type": "text", "text": "Nice to meet you, Phil!"}]},
            {"type": "user_input", "content": [{"type": "text", "text": "What is my name?"}]},
        ]
    interaction = client.interactions.create(model="gemini-3-flash-preview", input=history, store=False)
    assert "Phil" in interaction.text


def function_round_trip(client: Client) -> None:
    asked = client.interactions.create(
        model="gemini-3-flash-preview", input="Call get_weather for Paris", tools=TOOLS
    )
    assert asked.status == "requires_action"
    call = asked.function_calls[-1]
    assert isinstance(call, FunctionCall) and call.name == "get_weather" and call.arguments["city"] == "Paris"
    answer = client.interactions.create(
        model="gemini-3-flash-preview", previous_interaction_id=asked.id, tools=TOOLS,
        input=[{"type": "function_result", "call_id": call.id, "name": call.name, "result": {"temperature_c": 21}}],
    )  # fmt: skip
    assert answer.status == "completed" and "21" in answer.text


def streaming_loop(client: Client, extra_headers: dict[str, str] | None = None) -> tuple[str, str]:
    text, thoughts = [], []
    with client.interactions.create(
        model="gemini-3-flash-preview", input="Count to three.", stream=True,
        generation_config={"thinking_level": "low", "thinking_summaries": "auto"}, extra_headers=extra_headers,
    ) as stream:  # fmt: skip
        for event in stream:
            delta = getattr(event, "delta", None)
            if isinstance(delta, TextContent):
                text.append(delta.text)
            elif isinstance(delta, ThoughtSummaryDelta) and isinstance(delta.content, TextContent):
                thoughts.append(delta.content.text)
        final = stream.interaction
    assert final.status == "completed"
    assert final.usage is not None and final.usage.total_thought_tokens
    assert "".join(text) == final.text and thoughts
    assert isinstance(final.thoughts[0], Thought) and final.thoughts[0].text == "".join(thoughts)
    return "".join(text), "".join(thoughts)


def background_polling(client: Client, **create: Any) -> list[str]:
    started = client.interactions.create(input="Research the history of tea.", background=True, **create)
    seen: list[str] = []
    final = client.interactions.wait(
        started.id, poll_interval=0.05, on_status=lambda i: seen.append(str(i.status))
    )
    assert final.status == "completed" and final.text
    return seen


# -- on fixtures ---------------------------------------------------------------------------------


@pytest.fixture(params=["steps", "legacy"])
def gen(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_text_prompt_on_fixtures(gen: str) -> None:
    client, transport = fixture_client(gen, ["text.json"])
    assert text_prompt(client) == "v1_text1"
    request = transport.requests[0]
    assert request.url.path == "/v1beta/interactions"
    assert request.headers["x-goog-api-key"] == "test-key"
    assert request.headers["api-revision"] == "2026-05-20"
    assert transport.bodies()[0] == {"model": "gemini-3-flash-preview", "input": "Tell me a short joke."}


def test_two_turn_chain_on_fixtures(gen: str) -> None:
    client, transport = fixture_client(gen, ["text.json", "chain2.json"])
    two_turn_chain(client)
    assert transport.bodies()[1]["previous_interaction_id"] == "v1_text1"


def test_stateless_history_on_fixtures(gen: str) -> None:
    client, transport = fixture_client(gen, ["stateless.json"])
    stateless_history(client, gen)
    body = transport.bodies()[0]
    assert body["store"] is False and len(body["input"]) == 3


def test_function_round_trip_on_fixtures(gen: str) -> None:
    client, transport = fixture_client(gen, ["function_call.json", "function_answer.json"])
    function_round_trip(client)
    second = transport.bodies()[1]
    assert second["previous_interaction_id"] == "v1_fc"
    assert second["input"][0] == {"type": "function_result", "call_id": "call_1", "name": "get_weather",
                                  "result": {"temperature_c": 21}}  # fmt: skip


def test_streaming_loop_on_fixtures(gen: str) -> None:
    client, transport = fixture_client(gen, ["stream_thoughts.sse"])
    text, thoughts = streaming_loop(client)
    assert (text, thoughts) == ("One, two, three.", "Counting to three.")
    assert transport.requests[0].headers["accept"] == "text/event-stream"
    assert transport.bodies()[0]["stream"] is True


def test_background_polling_on_fixtures(gen: str) -> None:
    client, transport = fixture_client(gen, ["background_running.json", "background_running.json",
                                             "background_running.json", "background_done.json"])  # fmt: skip
    seen = background_polling(client, agent="deep-research-pro-preview-12-2025")
    assert seen == ["in_progress", "completed"]
    assert [r.method for r in transport.requests] == ["POST", "GET", "GET", "GET"]
    assert transport.requests[1].url.params["stream"] == "false"


# -- on the local server, both generations ---------------------------------------------------------


SCENARIOS: dict[str, Callable[..., Any]] = {
    "text": text_prompt,
    "chain": two_turn_chain,
    "function": function_round_trip,
    "stream": streaming_loop,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_guide_on_local_server(client: Client, name: str) -> None:
    SCENARIOS[name](client)


def test_stateless_history_on_local_server(client: Client, generation: str) -> None:
    stateless_history(client, generation)


def test_background_polling_on_local_server(client: Client) -> None:
    seen = background_polling(
        client, model="gemini-3-flash-preview", extra_headers={"X-Scripted-Delay-Ms": "30"}
    )
    assert seen[0] == "in_progress" and seen[-1] == "completed"


def test_stream_resumes_after_a_cut_on_local_server(client: Client) -> None:
    text, _ = streaming_loop(client, extra_headers={"X-Scripted-Cut-After": "4"})
    assert text.startswith("**Scripted reply**")
