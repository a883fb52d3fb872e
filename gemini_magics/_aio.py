"""Many concurrent POSTs from one event loop, over aiohttp: ``--over`` rows.

httpx costs about 1.5 ms of CPU per request at dozens of requests in flight (its pure-Python HTTP/1.1
parser, anyio's cancel scopes, and a connection pool that inspects each connection for each request);
aiohttp's C parser about 0.35 ms (``benchmarks/bench_extract.py``). The kernel's CPU is what limits a
live ``--over`` run, so rows go out over aiohttp, while requests and responses stay httpx objects: the
client's headers, error mapping and response parsing are used unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from ._exceptions import APIConnectionError, APITimeoutError

__all__ = ["AioSender"]


class AioSender:
    """Sends ``httpx.Request`` objects over one aiohttp session (made in the running event loop)."""

    def __init__(self, connections: int, base_url: str) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
        # the environment's proxy settings are read once, not for every request as trust_env would
        self._proxy = proxy_for(base_url)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=True)

    async def __call__(self, request: httpx.Request, timeout: float | None) -> httpx.Response:
        aiohttp = self._aiohttp
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        try:
            async with self._session.request(request.method, str(request.url), data=request.content, headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=timeout), proxy=self._proxy) as response:  # fmt: skip
                content = await response.read()
                received: Any = list(response.headers.items())
                status = response.status
        except asyncio.TimeoutError as exc:
            raise APITimeoutError(request=request) from exc
        except aiohttp.ClientError as exc:
            raise APIConnectionError(f"Connection error: {exc}", request=request) from exc
        # the body is already decoded: the response must not say it is still compressed
        received = [(k, v) for k, v in received if k.lower() not in ("content-encoding", "transfer-encoding", "content-length")]
        return httpx.Response(status, headers=received, content=content, request=request)

    async def aclose(self) -> None:
        await self._session.close()


def proxy_for(url: str) -> str | None:
    """The proxy ``HTTPS_PROXY``/``HTTP_PROXY`` give for ``url``, unless ``NO_PROXY`` exempts its host (as
    httpx decides for the client's own requests)."""
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme or "https")
