"""Many concurrent POSTs from one event loop, over aiohttp: ``--over`` rows.

httpx costs about 1.5 ms of CPU per request at dozens of requests in flight (its pure-Python HTTP/1.1
parser, anyio's cancel scopes, and a connection pool that inspects each connection for each request);
aiohttp's C parser about 0.35 ms (``benchmarks/bench_extract.py``). The kernel's CPU is what limits a
live ``--over`` run, so rows go out over aiohttp as plain bytes, URL and headers (the client's own); an
``httpx.Request`` is built only when something fails, for the client's error mapping (building one for every
row cost a sixth of the kernel's time: URL parsing, header normalising).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import httpx

from ._exceptions import APIConnectionError, APITimeoutError

__all__ = ["AioSender", "Received", "Send", "failed_response"]


Received = tuple[int, list[tuple[str, str]], bytes]
"""A response as it came: status, headers, body (decoded)."""
Send = Callable[[str, bytes, Mapping[str, str], "float | None"], Awaitable[Received]]
"""What sends one POST (:class:`AioSender`): URL, body, headers, timeout → :data:`Received`."""


class AioSender:
    """Sends POSTs over one aiohttp session (made in the running event loop)."""

    def __init__(self, connections: int, base_url: str) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
        # the environment's proxy settings are read once, not for every request as trust_env would
        self._proxy = proxy_for(base_url)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=True)

    async def __call__(self, url: str, content: bytes, headers: Mapping[str, str], timeout: float | None) -> Received:
        aiohttp = self._aiohttp
        try:
            async with self._session.post(url, data=content, headers=headers, proxy=self._proxy,
                                          timeout=aiohttp.ClientTimeout(total=timeout)) as response:  # fmt: skip
                body = await response.read()
                received = list(response.headers.items())
                status = response.status
        except asyncio.TimeoutError as exc:
            raise APITimeoutError(request=failed_request(url, content, headers)) from exc
        except aiohttp.ClientError as exc:
            raise APIConnectionError(f"Connection error: {exc}", request=failed_request(url, content, headers)) from exc
        # the body is already decoded: the headers must not say it is still compressed
        return status, [(k, v) for k, v in received if k.lower() not in _DECODED], body

    async def aclose(self) -> None:
        await self._session.close()


_DECODED = frozenset({"content-encoding", "transfer-encoding", "content-length"})


def failed_request(url: str, content: bytes, headers: Mapping[str, str]) -> httpx.Request:
    """The request an error names (only then is one built)."""
    return httpx.Request("POST", url, content=content, headers=headers)


def failed_response(received: Received, url: str, content: bytes, headers: Mapping[str, str]) -> httpx.Response:
    status, response_headers, body = received
    return httpx.Response(status, headers=response_headers, content=body, request=failed_request(url, content, headers))


def proxy_for(url: str) -> str | None:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY`` give for ``url``, unless ``NO_PROXY`` exempts its host (as
    httpx decides for the client's own requests)."""
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme or "https")
