"""The server's guard against a local nuisance: deadlines for request headers, a cap on connections.

uvicorn gives an idle keep-alive connection a timeout, but none to a request whose headers never end:
a local process without the key could open a thousand half-sent requests and hold every connection
(and file descriptor) of the server. This HTTP protocol (uvicorn's h11 one, guarded) gives each
request's headers ``HEADER_SECONDS`` to arrive in full, and answers a connection past
``MAX_CONNECTIONS`` with a JSON 503 at once, so legitimate callers are refused cleanly or served,
never left waiting. Request bodies have their own deadline in the app (``BODY_SECONDS``).

The guard is one mixin over either of uvicorn's HTTP protocols: httptools (its C parser, when installed:
the ``local`` extra brings it, for a quarter less CPU a request) or h11 (pure Python).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["Guard", "GuardedH11Protocol", "guarded_protocol", "HEADER_SECONDS", "MAX_CONNECTIONS", "BODY_SECONDS"]

HEADER_SECONDS = 10.0
BODY_SECONDS = 60.0
MAX_CONNECTIONS = 256


def _raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


class Guard:
    """The guard's state and timer, mixed into an HTTP protocol; settable per class (tests shorten them)."""

    header_seconds = HEADER_SECONDS
    max_connections = MAX_CONNECTIONS
    connections: set[Any]
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any
    _header_timer: asyncio.TimerHandle | None = None

    def _admitted(self, transport: asyncio.Transport) -> bool:
        if len(self.connections) > self.max_connections:
            transport.write(_raw_response(503, "Service Unavailable", "unavailable",
                                          "too many open connections to the local server: retry shortly"))  # fmt: skip
            transport.close()
            return False
        return True

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_seconds, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _waiting_for_headers(self) -> bool:
        raise NotImplementedError

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self._waiting_for_headers() or self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_raw_response(408, "Request Timeout", "deadline_exceeded",
                                               f"request headers not complete within {self.header_seconds:g} s"))  # fmt: skip
        self.transport.close()


class GuardedH11Protocol(Guard, H11Protocol):
    """uvicorn's h11 protocol, guarded."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self._admitted(transport):
            self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_headers():
            self._arm()  # still waiting for (the rest of) a request's headers
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _waiting_for_headers(self) -> bool:
        return self.conn.their_state is h11.IDLE


def guarded_protocol() -> type:
    """The guarded protocol to serve with: httptools' when it is installed, else h11's."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return GuardedH11Protocol

    class GuardedHttpToolsProtocol(Guard, HttpToolsProtocol):
        """uvicorn's httptools protocol, guarded: a request's headers are awaited from its first byte (or the
        connection's start) until the parser has them all."""

        _awaiting = True

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if self._admitted(transport):
                self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._awaiting = True
            self._arm()

        def on_headers_complete(self) -> None:
            self._awaiting = False
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _waiting_for_headers(self) -> bool:
            return self._awaiting

    return GuardedHttpToolsProtocol
