"""``client.interactions``: create (unary or streamed), get (incl. resume), cancel, delete, wait."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

import httpx
from pydantic import ValidationError

# imported with the module, not in acreate: it runs once per row of an --over run
from .._aio import Send, failed_response
from .._continuation import MAX_HOPS, continuation_body, merge_hops, next_token
from .._exceptions import APIResponseValidationError, GeminiError, status_error_from_response
from .._streaming import InteractionStream
from ..types._base import BaseModel
from ..types.interaction import Interaction

if TYPE_CHECKING:
    from .._client import Client

_REJECTED_PAIRS = (
    ("model", "agent"),
    ("model", "agent_config"),
    ("generation_config", "agent"),
    ("generation_config", "agent_config"),
)


def to_jsonable(value: Any) -> Any:
    """Models become their wire dicts; None-valued dict entries are dropped (unset is not sent)."""
    if isinstance(value, BaseModel):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def build_create_body(
    params: Mapping[str, Any], extra_body: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    body = {k: to_jsonable(v) for k, v in params.items() if v is not None}
    if "model" not in body and "agent" not in body:
        raise GeminiError("interactions.create needs model=... (or agent=... for an agent interaction)")
    for a, b in _REJECTED_PAIRS:
        if a in body and b in body:
            raise GeminiError(f"interactions.create: {a}= and {b}= cannot be used together")
    if extra_body:
        body.update(to_jsonable(dict(extra_body)))
    return body


def parse_interaction(response: httpx.Response) -> Interaction:
    return parse_interaction_json(response.content)


def parse_interaction_json(content: bytes) -> Interaction:
    # json.loads and a validation of the objects takes half the time pydantic's own JSON parsing does for an
    # interaction (its many models allow extra fields); it is once per row of a big --over run
    try:
        return Interaction.model_validate(json.loads(content))
    except json.JSONDecodeError as exc:
        message = f"the body is not JSON ({exc.msg} at character {exc.pos})"
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
    raise APIResponseValidationError(f"unreadable interaction: {message}", body=content.decode("utf-8", "replace"))


class Interactions:
    def __init__(self, client: Client) -> None:
        self._client = client

    @overload
    def create(
        self,
        *,
        stream: Literal[False] = False,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        **params: Any,
    ) -> Interaction: ...

    @overload
    def create(
        self,
        *,
        stream: Literal[True],
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        **params: Any,
    ) -> InteractionStream: ...

    def create(
        self,
        *,
        stream: bool = False,
        extra_headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        **params: Any,
    ) -> Interaction | InteractionStream:
        """Create an interaction.

        ``params`` are the API's own fields (``model``, ``input``, ``system_instruction``, ``tools``,
        ``generation_config``, ``response_format``, ``previous_interaction_id``, ``store``,
        ``background``, ``service_tier``, ...), as dicts or models. ``input`` may be a string, content
        blocks, turns or steps. With ``stream=True`` the result is an :class:`InteractionStream`.
        ``max_retries`` overrides the client's for this call (0: the caller handles 429/503 itself).

        >>> client.interactions.create(model="gemini-3-flash-preview", input="Hi").text
        """
        body = build_create_body(params, extra_body)
        client = self._client
        # an answer handed back in hops (requires_continuation) is continued here, as the SDKs do; a
        # background run is continued by the server itself
        continues = not body.get("background")
        if not stream:
            hops = [parse_interaction(client._post("interactions", json=body, extra_headers=extra_headers,
                                                   timeout=timeout, max_retries=max_retries))]  # fmt: skip
            sent: str | None = None
            while continues and len(hops) < MAX_HOPS and (token := next_token(hops[-1], sent)):
                hop = continuation_body(body, token, hops[-1].id)
                hops.append(parse_interaction(client._post("interactions", json=hop, extra_headers=extra_headers,
                                                           timeout=timeout, max_retries=max_retries)))  # fmt: skip
                sent = token
            return merge_hops(hops)
        body["stream"] = True
        response = client._post("interactions", json=body, extra_headers=extra_headers, accept="text/event-stream",
                                stream=True, timeout=timeout, max_retries=max_retries)  # fmt: skip

        def next_hop(token: str, owner_id: str) -> httpx.Response:
            hop = {**continuation_body(body, token, owner_id), "stream": True}
            return client._post("interactions", json=hop, extra_headers=extra_headers, accept="text/event-stream",
                                stream=True, timeout=timeout, max_retries=max_retries)  # fmt: skip

        stream_ = self._stream(response, extra_headers, resumable=body.get("store", True) is not False)
        stream_.next_hop = next_hop if continues else None
        return stream_

    async def acreate(
        self,
        send: Send,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **params: Any,
    ) -> Interaction:
        """:meth:`create` (unary, no retries: the caller handles 429/503) sent with ``send``, an async
        transport (``--over`` sends its rows from one event loop, see :mod:`gemini_magics._aio`).

        Errors are the client's own (:class:`APIStatusError`, :class:`APITimeoutError`,
        :class:`APIConnectionError`); hops of a ``requires_continuation`` answer are continued here too.
        """
        body = build_create_body(params, None)
        hops = [await self._apost(send, body, extra_headers, timeout)]
        sent: str | None = None
        while not body.get("background") and len(hops) < MAX_HOPS and (token := next_token(hops[-1], sent)):
            hops.append(await self._apost(send, continuation_body(body, token, hops[-1].id), extra_headers, timeout))
            sent = token
        return merge_hops(hops)

    async def _apost(self, send: Send, body: dict[str, Any], extra_headers: Mapping[str, str] | None,
                     timeout: float | None) -> Interaction:  # fmt: skip
        client = self._client
        url, headers = client.url("interactions"), client.headers(extra_headers)
        # as httpx encodes json=: compact UTF-8
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        received = await send(url, content, headers, timeout)
        if received[0] >= 400:
            raise status_error_from_response(failed_response(received, url, content, headers))
        return parse_interaction_json(received[2])

    def _stream(
        self, response: httpx.Response, extra_headers: Mapping[str, str] | None, *, resumable: bool
    ) -> InteractionStream:
        resume_headers = {
            k: v for k, v in (extra_headers or {}).items() if not k.lower().startswith("x-scripted-")
        }

        def reconnect(interaction_id: str, last_event_id: str | None) -> httpx.Response:
            return self._open_stream(interaction_id, last_event_id, resume_headers)

        return InteractionStream(response, reconnect=reconnect, resumable=resumable)

    def _open_stream(
        self, interaction_id: str, last_event_id: str | None, extra_headers: Mapping[str, str] | None
    ) -> httpx.Response:
        params = {"stream": "true"}
        if last_event_id:
            params["last_event_id"] = last_event_id
        return self._client._get(f"interactions/{interaction_id}", params=params, extra_headers=extra_headers,
                                 accept="text/event-stream", stream=True)  # fmt: skip

    @overload
    def get(
        self,
        interaction_id: str,
        *,
        stream: Literal[False] = False,
        last_event_id: str | None = None,
        include_input: bool = False,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Interaction: ...

    @overload
    def get(
        self,
        interaction_id: str,
        *,
        stream: Literal[True],
        last_event_id: str | None = None,
        include_input: bool = False,
        extra_headers: Mapping[str, str] | None = None,
    ) -> InteractionStream: ...

    def get(
        self,
        interaction_id: str,
        *,
        stream: bool = False,
        last_event_id: str | None = None,
        include_input: bool = False,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Interaction | InteractionStream:
        """Fetch a stored interaction, or (``stream=True``) its events, after ``last_event_id`` if given."""
        if stream:
            response = self._open_stream(interaction_id, last_event_id, extra_headers)
            return self._stream(response, extra_headers, resumable=True)
        params = {"stream": "false"}
        if include_input:
            params["include_input"] = "true"
        response = self._client._get(
            f"interactions/{interaction_id}", params=params, extra_headers=extra_headers
        )
        return parse_interaction(response)

    def cancel(self, interaction_id: str, *, extra_headers: Mapping[str, str] | None = None) -> Interaction:
        response = self._client._post(
            f"interactions/{interaction_id}/cancel", content=b"", extra_headers=extra_headers
        )
        return parse_interaction(response)

    def delete(self, interaction_id: str, *, extra_headers: Mapping[str, str] | None = None) -> None:
        self._client._delete(f"interactions/{interaction_id}", extra_headers=extra_headers)

    def wait(
        self,
        interaction_id: str,
        *,
        poll_interval: float = 1.0,
        timeout: float | None = None,
        on_status: Callable[[Interaction], None] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Interaction:
        """Poll a (background) interaction until it reaches a terminal status or ``requires_action``.

        ``on_status`` is called with the interaction each time its status changes.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last_status: str | None = None
        while True:
            interaction = self.get(interaction_id, extra_headers=extra_headers)
            if interaction.status != last_status:
                last_status = interaction.status
                if on_status is not None:
                    on_status(interaction)
            if interaction.ended:
                return interaction
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"interaction {interaction_id} still {interaction.status} after {timeout} s"
                )
            self._client._sleep(poll_interval)
