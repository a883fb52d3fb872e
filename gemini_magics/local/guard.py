"""The server's guard against a local nuisance: deadlines for request headers, a cap on connections.

uvicorn gives an idle keep-alive connection a timeout, but none to a request whose headers never end:
a local process without the key could open a thousand half-sent requests and hold every connection
(and file descriptor) of the server. This HTTP protocol (uvicorn's h11 one, guarded) gives each
request's headers ``HEADER_SECONDS`` to arrive in full, and answers a connection past
``MAX_CONNECTIONS`` with a JSON 503 at once, so legitimate callers are refused cleanly or served,
never left waiting. Request bodies have their own deadline in the app (``BODY_SECONDS``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["GuardedH11Protocol", "HEADER_SECONDS", "MAX_CONNECTIONS", "BODY_SECONDS"]

HEADER_SECONDS = 10.0
BODY_SECONDS = 60.0
MAX_CONNECTIONS = 256


def _raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a connection cap (settable per class)."""

    header_seconds = HEADER_SECONDS
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_raw_response(503, "Service Unavailable", "unavailable",
                                          "too many open connections to the local server: retry shortly"))  # fmt: skip
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm()  # still waiting for (the rest of) a request's headers
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_seconds, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_raw_response(408, "Request Timeout", "deadline_exceeded",
                                               f"request headers not complete within {self.header_seconds:g} s"))  # fmt: skip
        self.transport.close()
