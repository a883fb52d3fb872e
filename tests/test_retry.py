"""The retry policy as a table, and the client's attempt loop over a MockTransport."""

from __future__ import annotations

import email.utils
import json
import random

import httpx
import pytest

from gemini_magics import Client
from gemini_magics._exceptions import APIConnectionError, BadRequestError, InternalServerError, RateLimitError
from gemini_magics._retry import is_retryable_status, parse_retry_after, retry_delay


@pytest.fixture(autouse=True)
def real_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy's own delays here (the suite runs others on a fast retry clock)."""
    monkeypatch.setenv("GEMINI_MAGICS_RETRY_CLOCK", "1")


def test_the_retry_clock_scales_every_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_MAGICS_RETRY_CLOCK", "0.5")
    assert retry_delay(0, {"retry-after": "4"}) == 2.0
    assert 0.375 * 0.5 <= retry_delay(1, None, rng=random.Random(1)) <= 1.0 * 0.5
    monkeypatch.setenv("GEMINI_MAGICS_RETRY_CLOCK", "not a number")
    assert retry_delay(0, {"retry-after": "4"}) == 4.0


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (400, {}, False), (401, {}, False), (403, {}, False), (404, {}, False), (422, {}, False),
        (408, {}, True), (409, {}, True), (429, {}, True), (500, {}, True), (502, {}, True), (503, {}, True),
        (429, {"x-should-retry": "false"}, False), (400, {"x-should-retry": "true"}, True),
    ],
)  # fmt: skip
def test_which_statuses_are_retried(status: int, headers: dict[str, str], expected: bool) -> None:
    assert is_retryable_status(status, headers) is expected


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": email.utils.formatdate(NOW + 3, usegmt=True)}, 3.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after_forms(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


@pytest.mark.parametrize(
    ("retries_done", "headers", "low", "high"),
    [
        (0, {}, 0.375, 0.5), (1, {}, 0.75, 1.0), (2, {}, 1.5, 2.0), (4, {}, 6.0, 8.0), (10, {}, 6.0, 8.0),
        (0, {"retry-after": "3"}, 3.0, 3.0),
        (0, {"retry-after": "120"}, 0.375, 0.5),  # over 60 s: ignored, backoff instead
        (0, {"retry-after": "-1"}, 0.375, 0.5),
        (0, {"retry-after-ms": "0"}, 0.375, 0.5),
    ],
)  # fmt: skip
def test_retry_delay_bounds(retries_done: int, headers: dict[str, str], low: float, high: float) -> None:
    rng = random.Random(7)
    for _ in range(50):
        assert low <= retry_delay(retries_done, headers, rng=rng) <= high


def counting_client(
    responses: list[httpx.Response | Exception], max_retries: int = 4
) -> tuple[Client, list[httpx.Request], list[float]]:
    seen: list[httpx.Request] = []
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    client = Client(
        api_key="k", max_retries=max_retries, http_client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    client._sleep = sleeps.append
    return client, seen, sleeps


OK = httpx.Response(200, json={"id": "v1_ok", "status": "completed"})


def test_429_then_success_waits_retry_after_ms() -> None:
    client, seen, sleeps = counting_client(
        [httpx.Response(429, headers={"retry-after-ms": "20"}, json={}), OK]
    )
    assert client.interactions.create(model="m", input="x").id == "v1_ok"
    assert len(seen) == 2 and sleeps == [0.02]


def test_5xx_exhausts_retries_then_raises() -> None:
    client, seen, _ = counting_client(
        [httpx.Response(503, json={"error": {"code": "unavailable", "message": "busy"}})] * 3, max_retries=2
    )
    with pytest.raises(InternalServerError, match="busy"):
        client.interactions.create(model="m", input="x")
    assert len(seen) == 3


def test_4xx_is_not_retried() -> None:
    client, seen, _ = counting_client(
        [httpx.Response(400, json={"error": {"code": "invalid_argument", "message": "bad"}})]
    )
    with pytest.raises(BadRequestError):
        client.interactions.create(model="m", input="x")
    assert len(seen) == 1


def test_connection_errors_are_retried_then_reported() -> None:
    client, seen, _ = counting_client([httpx.ConnectError("refused")] * 2 + [OK])
    assert client.interactions.create(model="m", input="x").id == "v1_ok"
    client, seen, _ = counting_client([httpx.ConnectError("refused")] * 2, max_retries=1)
    with pytest.raises(APIConnectionError):
        client.interactions.create(model="m", input="x")
    assert len(seen) == 2


def test_rate_limit_error_class_carries_status_and_body() -> None:
    client, _, _ = counting_client(
        [httpx.Response(429, json={"error": {"code": "resource_exhausted", "message": "slow down"}})],
        max_retries=0,
    )
    with pytest.raises(RateLimitError) as info:
        client.interactions.create(model="m", input="x")
    assert (
        info.value.status_code == 429
        and info.value.code == "resource_exhausted"
        and info.value.body["error"]["message"] == "slow down"
    )


def test_a_cut_stream_is_resumed_never_re_posted(server, steps_client: Client) -> None:  # type: ignore[no-untyped-def]
    import uuid

    from conftest import requests_to

    mark = f"resume me {uuid.uuid4().hex[:8]}"  # counted by its input: a shared server's log keeps the latest only
    stream = steps_client.interactions.create(model="m", input=mark, stream=True,
                                              extra_headers={"X-Scripted-Cut-After": "5", "X-Scripted-Deltas": "40"})  # fmt: skip
    final = stream.until_done()
    assert stream.resumes >= 1 and final.status == "completed"
    assert len([r for r in requests_to(server, "/interactions") if mark in json.dumps(r.get("json"))]) == 1  # one POST
    gets = [r for r in requests_to(server, final.id, "GET") if r["query"].get("stream") == "true"]
    assert gets and gets[0]["query"]["last_event_id"]
    assert final.text == steps_client.interactions.get(final.id).text
