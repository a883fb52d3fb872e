"""Client configuration, request building, errors, files and waiting, over loopback or a MockTransport."""

from __future__ import annotations

import json

import httpx
import pytest

from gemini_magics import Client
from gemini_magics._exceptions import (
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GeminiError,
    InternalServerError,
    MissingAPIKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from gemini_magics.types import TextContent

SECRET = "AIza-SECRET-test-key-123"


def recording_client(**kwargs) -> tuple[Client, list[httpx.Request]]:  # type: ignore[no-untyped-def]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "v1_x", "status": "completed"})

    return Client(http_client=httpx.Client(transport=httpx.MockTransport(handler)), **kwargs), seen


def test_missing_key_names_keyword_and_variables() -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        Client()
    message = str(info.value)
    assert "api_key=" in message and "GEMINI_API_KEY" in message and "GOOGLE_API_KEY" in message


def test_keyword_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "from-google")
    client, seen = recording_client()
    client.interactions.create(model="m", input="x")
    assert seen[-1].headers["x-goog-api-key"] == "from-google"
    assert str(seen[-1].url) == "https://generativelanguage.googleapis.com/v1beta/interactions"
    monkeypatch.setenv("GEMINI_API_KEY", "from-gemini")
    monkeypatch.setenv("GEMINI_BASE_URL", "http://127.0.0.1:9/prefix")
    client, seen = recording_client()
    client.interactions.create(model="m", input="x")
    assert (
        seen[-1].headers["x-goog-api-key"] == "from-gemini"
        and str(seen[-1].url) == "http://127.0.0.1:9/prefix/v1beta/interactions"
    )
    client, seen = recording_client(api_key="kw", base_url="http://127.0.0.1:8", api_version="v1")
    client.interactions.create(model="m", input="x")
    assert (
        seen[-1].headers["x-goog-api-key"] == "kw"
        and str(seen[-1].url) == "http://127.0.0.1:8/v1/interactions"
    )


def test_no_key_needed_for_a_custom_base_url() -> None:
    client, seen = recording_client(base_url="http://127.0.0.1:1")
    client.interactions.create(model="m", input="x")
    assert "x-goog-api-key" not in seen[-1].headers


def test_headers_unset_fields_and_extra_headers() -> None:
    client, seen = recording_client(api_key="k")
    client.interactions.create(model="m", input="x", system_instruction=None, generation_config={"temperature": 0.2, "seed": None},
                               extra_headers={"X-Trace": "1"}, extra_body={"labels": {"team": "a"}})  # fmt: skip
    request = seen[-1]
    assert request.headers["api-revision"] == "2026-05-20" and request.headers["x-trace"] == "1"
    assert json.loads(request.content) == {
        "model": "m",
        "input": "x",
        "generation_config": {"temperature": 0.2},
        "labels": {"team": "a"},
    }
    client, seen = recording_client(api_key="k", api_revision=None)
    client.interactions.create(model="m", input="x")
    assert "api-revision" not in seen[-1].headers


def test_input_forms_accepted_as_dicts_or_models() -> None:
    client, seen = recording_client(api_key="k")
    client.interactions.create(model="m", input=[TextContent(text="a"), {"type": "text", "text": "b"}])
    assert json.loads(seen[-1].content)["input"] == [
        {"type": "text", "text": "a"},
        {"type": "text", "text": "b"},
    ]
    client.interactions.create(model="m", input=[{"role": "user", "content": "hi"}])
    assert json.loads(seen[-1].content)["input"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "params", [{"input": "x"}, {"model": "m", "agent": "a"}, {"agent": "a", "generation_config": {}}]
)
def test_invalid_combinations_are_refused_before_sending(params: dict) -> None:  # type: ignore[type-arg]
    client, seen = recording_client(api_key="k")
    with pytest.raises(GeminiError):
        client.interactions.create(**params)
    assert not seen


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, BadRequestError), (401, AuthenticationError), (403, PermissionDeniedError), (404, NotFoundError),
     (409, ConflictError), (422, UnprocessableEntityError), (429, RateLimitError), (500, InternalServerError),
     (503, InternalServerError), (418, APIStatusError)],
)  # fmt: skip
def test_every_error_class_carries_status_message_and_body_but_never_the_key(status: int, cls: type) -> None:
    body = {"error": {"code": "x", "message": f"server says {status}"}}
    transport = httpx.MockTransport(lambda r: httpx.Response(status, json=body))
    client = Client(api_key=SECRET, max_retries=0, http_client=httpx.Client(transport=transport))
    with pytest.raises(cls) as info:
        client.interactions.get("v1_x")
    error = info.value
    assert type(error) is cls or cls is APIStatusError
    assert error.status_code == status and error.body == body and f"server says {status}" in str(error)
    for text in (str(error), repr(error), repr(client), str(error.body)):
        assert SECRET not in text


def test_html_error_bodies_are_reported_as_text() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(502, text="<html>bad gateway</html>"))
    client = Client(api_key="k", max_retries=0, http_client=httpx.Client(transport=transport))
    with pytest.raises(InternalServerError, match="bad gateway"):
        client.interactions.get("v1_x")


def test_get_cancel_delete_and_wait_with_status_callback(steps_client: Client) -> None:
    started = steps_client.interactions.create(model="m", input="slow", background=True,
                                               extra_headers={"X-Scripted-Delay-Ms": "40"})  # fmt: skip
    assert started.status == "in_progress"
    statuses: list[str] = []
    final = steps_client.interactions.wait(
        started.id, poll_interval=0.02, on_status=lambda i: statuses.append(i.status or "")
    )
    assert statuses[0] == "in_progress" and statuses[-1] == "completed" and final.text
    fetched = steps_client.interactions.get(final.id, include_input=True)
    assert fetched.steps[0].type == "user_input" and fetched.input == "slow"
    steps_client.interactions.delete(final.id)
    with pytest.raises(NotFoundError):
        steps_client.interactions.get(final.id)


def test_files_resumable_upload_in_chunks_get_list_download_delete(steps_client: Client, server) -> None:  # type: ignore[no-untyped-def]
    payload = bytes(range(256)) * 40  # 10 KiB, sent in 4 KiB chunks
    uploaded = steps_client.files.upload(
        payload, mime_type="application/octet-stream", display_name="blob", chunk_size=4096
    )
    assert (
        uploaded.name.startswith("files/")
        and uploaded.size_bytes == len(payload)
        and uploaded.state == "ACTIVE"
    )
    chunks = [r for r in server.api.requests if "/sessions/" in r["path"]]
    assert [c["headers"]["x-goog-upload-command"] for c in chunks[-3:]] == [
        "upload",
        "upload",
        "upload, finalize",
    ]
    assert all("x-goog-api-key" not in c["headers"] for c in chunks)
    assert steps_client.files.get(uploaded.name).display_name == "blob"
    assert steps_client.files.wait_active(uploaded.name).state == "ACTIVE"
    assert steps_client.files.download(uploaded.name) == payload
    names = [f.name for f in steps_client.files.list(page_size=1)]
    assert uploaded.name in names
    steps_client.files.delete(uploaded.name)
    with pytest.raises(NotFoundError):
        steps_client.files.get(uploaded.name)


def test_an_uploaded_text_document_reaches_the_engine(steps_client: Client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "notes.txt"
    path.write_text("The secret word is pineapple.")
    uploaded = steps_client.files.upload(path)
    assert uploaded.mime_type == "text/plain"
    answer = steps_client.interactions.create(
        model="m", input=[{"type": "text", "text": "Read this"}, uploaded.as_part()]
    )
    assert "pineapple" in answer.text


@pytest.mark.parametrize(("body", "said"), [
    (b"<html>502 Bad Gateway</html>", "unreadable interaction: the body is not JSON (Expecting value at character 0)"),
    (b'{"id": "v1_x", "steps": 5}', "unreadable interaction: Input should be a valid list"),
])  # fmt: skip
def test_an_unreadable_interaction_is_one_error_that_keeps_the_body(body: bytes, said: str) -> None:
    from gemini_magics.resources.interactions import parse_interaction_json

    with pytest.raises(APIResponseValidationError) as caught:
        parse_interaction_json(body)
    assert str(caught.value).startswith(said) and caught.value.body == body.decode()
    assert parse_interaction_json(b'{"id": "v1_x", "status": "completed"}').id == "v1_x"
