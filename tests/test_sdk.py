"""The official google-genai SDK (current release) against the local server, over loopback."""

from __future__ import annotations

import json
import time

import pytest

genai = pytest.importorskip("google.genai", reason="the 'test' extra installs google-genai")
from google.genai import types  # noqa: E402


@pytest.fixture
def sdk(server):  # type: ignore[no-untyped-def]
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(
        base_url=server.base_url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)))  # fmt: skip


def test_create_stream_get_and_streamed_get_with_last_event_id(sdk) -> None:  # type: ignore[no-untyped-def]
    created = sdk.interactions.create(model="gemini-3-flash-preview", input="Say hello")
    assert created.status == "completed" and "Say hello" in created.output_text
    events = list(sdk.interactions.create(model="gemini-3-flash-preview", input="Stream hello", stream=True))
    kinds = [e.event_type for e in events]
    assert (
        kinds[0] == "interaction.created" and kinds[-1] == "interaction.completed" and "step.delta" in kinds
    )
    interaction_id = events[0].interaction.id
    assert sdk.interactions.get(interaction_id).status == "completed"
    replay = list(sdk.interactions.get(interaction_id, stream=True, last_event_id=events[2].event_id))
    assert [e.event_id for e in replay] == [e.event_id for e in events[3:]]


def test_background_polling_cancel_and_delete(sdk) -> None:  # type: ignore[no-untyped-def]
    done = sdk.interactions.create(model="m", input="quick background", background=True)
    deadline = time.monotonic() + 10
    while sdk.interactions.get(done.id).status != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sdk.interactions.get(done.id).output_text
    sdk.interactions.delete(done.id)
    with pytest.raises(Exception) as info:
        sdk.interactions.get(done.id)
    assert getattr(info.value, "status_code", None) == 404


def test_cancel_a_running_background_interaction(sdk, server) -> None:  # type: ignore[no-untyped-def]
    headered = genai.Client(api_key="k", http_options=types.HttpOptions(
        base_url=server.base_url, api_version="v1beta", headers={"X-Scripted-Delay-Ms": "200"},
        retry_options=types.HttpRetryOptions(attempts=1)))  # fmt: skip
    running = headered.interactions.create(model="m", input="very slow", background=True)
    assert running.status == "in_progress"
    assert headered.interactions.cancel(running.id).status == "cancelled"


def test_chain_function_round_trip_and_structured_output(sdk) -> None:  # type: ignore[no-untyped-def]
    first = sdk.interactions.create(model="m", input="Hi, my name is Phil.")
    second = sdk.interactions.create(model="m", input="What is my name?", previous_interaction_id=first.id)
    assert second.output_text == "Your name is Phil."
    tools = [{"type": "function", "name": "get_weather", "description": "weather",
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]  # fmt: skip
    asked = sdk.interactions.create(model="m", input="Call get_weather for Paris", tools=tools)
    assert asked.status == "requires_action"
    call = asked.steps[-1]
    assert call.name == "get_weather" and call.arguments == {"city": "Paris"}
    answer = sdk.interactions.create(model="m", previous_interaction_id=asked.id, tools=tools,
                                     input=[{"type": "function_result", "call_id": call.id, "name": call.name, "result": {"c": 21}}])  # fmt: skip
    assert "21" in answer.output_text
    schema = {
        "type": "object",
        "properties": {"person": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["person", "year"],
    }
    structured = sdk.interactions.create(model="m", input="Alice was born in 1990",
                                         response_format={"type": "text", "mime_type": "application/json", "schema": schema})  # fmt: skip
    assert json.loads(structured.output_text) == {"person": "Alice", "year": 1990}


def test_code_execution_really_runs_for_the_official_sdk(sdk, allow_local) -> None:  # type: ignore[no-untyped-def]
    answer = sdk.interactions.create(model="m", tools=[{"type": "code_execution"}],
                                     input="Run this:\n```python\nprint(6 * 7, 'from a subprocess')\n```")  # fmt: skip
    kinds = [step.type for step in answer.steps]
    assert "code_execution_call" in kinds and "code_execution_result" in kinds
    executed = next(step for step in answer.steps if step.type == "code_execution_result")
    assert executed.result.strip() == "42 from a subprocess" and "42 from a subprocess" in answer.output_text


def test_speech_with_two_speakers_streams_audio_deltas_the_sdk_reads(sdk) -> None:  # type: ignore[no-untyped-def]
    import base64
    import io
    import wave

    config = {"speech_config": [{"speaker": "Ann", "voice": "Kore"}, {"speaker": "Ben", "voice": "Puck"}]}
    events = list(sdk.interactions.create(model="gemini-2.5-flash-preview-tts", input="Ann: Hello.\nBen: Hi there.",
                                          response_format={"type": "audio", "mime_type": "audio/wav"},
                                          generation_config=config, stream=True))  # fmt: skip
    deltas = [e.delta for e in events if e.event_type == "step.delta"]
    assert len(deltas) >= 2 and all(d.type == "audio" and d.mime_type == "audio/wav" for d in deltas)
    wav = base64.b64decode("".join(d.data for d in deltas))
    with wave.open(io.BytesIO(wav)) as reader:
        assert reader.getnchannels() == 1 and reader.getnframes() / reader.getframerate() > 0.3
    done = sdk.interactions.get(events[0].interaction.id)
    (audio,) = [c for s in done.steps if s.type == "model_output" for c in s.content]
    assert audio.type == "audio" and base64.b64decode(audio.data) == wav and audio.sample_rate == deltas[0].sample_rate


def test_transcription_config_from_the_sdk(sdk) -> None:  # type: ignore[no-untyped-def]
    import base64

    from gemini_magics.local.speech import speak

    wav = base64.b64encode(speak("good morning").wav).decode()
    done = sdk.interactions.create(model="gemini-3-flash-preview",
                                   input=[{"type": "audio", "mime_type": "audio/wav", "data": wav}, {"type": "text", "text": "Transcribe."}],
                                   generation_config={"transcription_config": {"mode": {"type": "verbatim", "diarization_mode": "speaker"}}})  # fmt: skip
    assert "stand-in transcript of audio attachment: audio/wav" in done.output_text
    (text,) = [c for s in done.steps if s.type == "model_output" for c in s.content]
    speakers = [a for a in text.annotations or [] if a.type == "speech_metadata"]
    assert [a.speaker for a in speakers] == ["Speaker 1", "Speaker 2"] and speakers[0].start_index == len("Speaker 1: ")


def test_file_search_stores_through_the_sdk(sdk) -> None:  # type: ignore[no-untyped-def]
    store = sdk.file_search_stores.create(config={"display_name": "handbook"})
    assert store.name.startswith("fileSearchStores/") and store.display_name == "handbook"
    uploaded = sdk.files.upload(file=__import__("io").BytesIO(b"Refunds are paid within 14 days.\n\nShipping is free."),
                                config={"mime_type": "text/plain", "display_name": "policy.txt"})  # fmt: skip
    operation = sdk.file_search_stores.import_file(file_search_store_name=store.name, file_name=uploaded.name)
    assert operation.done
    assert sdk.file_search_stores.get(name=store.name).active_documents_count == 1
    answer = sdk.interactions.create(model="gemini-3-flash-preview", input="When are refunds paid?",
                                     tools=[{"type": "file_search", "file_search_store_names": [store.name]}])  # fmt: skip
    assert "Refunds are paid within 14 days." in answer.output_text
    (text,) = [c for s in answer.steps if s.type == "model_output" for c in s.content]
    assert [a.type for a in text.annotations] == ["file_citation"]


def test_a_video_from_the_sdk_runs_in_the_background_and_arrives_inline(sdk) -> None:  # type: ignore[no-untyped-def]
    import base64
    import io

    av = pytest.importorskip("av", reason="the local extra installs PyAV")
    started = sdk.interactions.create(model="veo-3.1-generate-preview", input="A kite over the sea", background=True,
                                      response_format={"type": "video", "aspect_ratio": "16:9", "duration": "2s", "delivery": "inline"})  # fmt: skip
    done = started
    for _ in range(100):
        if done.status != "in_progress":
            break
        __import__("time").sleep(0.1)
        done = sdk.interactions.get(started.id)
    (video,) = [c for s in done.steps if s.type == "model_output" for c in s.content]
    assert done.status == "completed" and video.type == "video" and video.mime_type == "video/webm"
    with av.open(io.BytesIO(base64.b64decode(video.data))) as container:
        assert abs(container.duration / 1e6 - 2.0) < 0.2
