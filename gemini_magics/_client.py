"""The Client: configuration, the HTTP attempt loop with retries, and the resources."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from types import TracebackType
from typing import Any

import httpx

from ._constants import (
    BASE_URL_ENV_VAR,
    DEFAULT_API_REVISION,
    DEFAULT_API_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT_SECONDS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_SECONDS,
    api_key_from_env,
)
from ._exceptions import APIConnectionError, APITimeoutError, MissingAPIKeyError, status_error_from_response
from ._retry import is_retryable_status, retry_delay
from ._version import __version__

DEFAULT_TIMEOUT = httpx.Timeout(DEFAULT_TIMEOUT_SECONDS, connect=DEFAULT_CONNECT_TIMEOUT_SECONDS)


SECRET_HEADERS = frozenset({"x-goog-api-key", "authorization", "proxy-authorization"})


class RedactedHeaders(dict[str, str]):
    """Request headers whose repr hides credentials: a traceback that prints local variables
    (``%xmode Verbose``) or a debug log shows ``'x-goog-api-key': '<redacted>'``, never the key."""

    def __repr__(self) -> str:
        shown = {k: "<redacted>" if k.lower() in SECRET_HEADERS else v for k, v in self.items()}
        return repr(shown)

    __str__ = __repr__


CONNECTION_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=256)


class Client:
    """A synchronous client for the Gemini Interactions API.

    >>> client = Client()                                  # GEMINI_API_KEY / GEMINI_BASE_URL from the env
    >>> interaction = client.interactions.create(model="gemini-3-flash-preview", input="Hello")
    >>> interaction.outputs[-1].text
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        api_revision: str | None = DEFAULT_API_REVISION,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        if api_key is None:
            api_key, _ = api_key_from_env()
        if base_url is None:
            base_url = os.environ.get(BASE_URL_ENV_VAR) or DEFAULT_BASE_URL
        if not api_key and base_url.rstrip("/") == DEFAULT_BASE_URL:
            raise MissingAPIKeyError()
        self._api_key = api_key or None
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.api_revision = api_revision
        self.max_retries = max_retries
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._default_headers = dict(default_headers or {})
        self._owns_http = http_client is None
        # as many kept-alive connections as --over may have rows in flight (256): with httpx's default of
        # 20, every row past the 20th would open (and close) a connection of its own
        self._http = http_client or httpx.Client(timeout=self.timeout, limits=CONNECTION_LIMITS)
        self._sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return f"Client(base_url={self.base_url!r}, api_version={self.api_version!r}, api_key=<{key}>)"

    @cached_property
    def interactions(self) -> Interactions:
        return Interactions(self)

    @cached_property
    def batches(self) -> Batches:
        return Batches(self)

    @cached_property
    def files(self) -> Files:
        return Files(self)

    @cached_property
    def file_search_stores(self) -> FileSearchStores:
        return FileSearchStores(self)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the request loop ---------------------------------------------------------------------------

    def url(self, path: str, *, upload: bool = False) -> str:
        prefix = f"{self.base_url}/upload" if upload else self.base_url
        return f"{prefix}/{self.api_version}/{path.lstrip('/')}"

    def headers(
        self, extra: Mapping[str, str] | None = None, *, accept: str = "application/json"
    ) -> dict[str, str]:
        headers = RedactedHeaders(
            {
                "Accept": accept,
                "Content-Type": "application/json",
                "User-Agent": f"gemini-magics/{__version__}",
                "x-goog-api-client": f"gemini-magics/{__version__}",
            }
        )
        if self.api_revision:
            headers["Api-Revision"] = self.api_revision
        if self._api_key:
            headers["x-goog-api-key"] = self._api_key
        headers.update(self._default_headers)
        if extra:
            headers.update(extra)
        return headers

    def _get(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        accept: str = "application/json",
        stream: bool = False,
    ) -> httpx.Response:
        return self.request("GET", self.url(path), params=params, stream=stream,
                            headers=self.headers(extra_headers, accept=accept))  # fmt: skip

    def _post(
        self,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        extra_headers: Mapping[str, str] | None = None,
        accept: str = "application/json",
        stream: bool = False,
        timeout: float | httpx.Timeout | None = None,
        upload: bool = False,
        max_retries: int | None = None,
    ) -> httpx.Response:
        return self.request("POST", self.url(path, upload=upload), json=json, content=content, stream=stream,
                            timeout=timeout, headers=self.headers(extra_headers, accept=accept),
                            max_retries=max_retries)  # fmt: skip

    def _pages(self, path: str, key: str, page_size: int) -> Iterator[Any]:
        """The items under ``key`` of every page of a list endpoint, following ``nextPageToken`` lazily."""
        token: str | None = None
        while True:
            params = {"pageSize": str(page_size)}
            if token:
                params["pageToken"] = token
            page = self._get(path, params=params).json()
            yield from page.get(key, [])
            token = page.get("nextPageToken")
            if not token:
                return

    def _delete(self, path: str, *, extra_headers: Mapping[str, str] | None = None) -> httpx.Response:
        return self.request("DELETE", self.url(path), headers=self.headers(extra_headers))

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        content: bytes | Callable[[], Iterator[bytes]] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str],
        stream: bool = False,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> httpx.Response:
        """Send with retries; an error status raises the matching :class:`APIStatusError`.

        Only the request is retried: once a streamed body starts, recovery is the stream's job
        (resume from the last event id), never a second POST. ``content`` may be a callable giving the
        body's pieces (a file read as it is sent): each attempt calls it afresh.
        """
        retries = self.max_retries if max_retries is None else max_retries
        attempt = 0
        while True:
            request = self._http.build_request(
                method, url, json=json, content=content() if callable(content) else content, params=params, headers=headers,
                timeout=timeout if timeout is not None else self.timeout,
            )  # fmt: skip
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TimeoutException as exc:
                if attempt < retries:
                    self._sleep(retry_delay(attempt))
                    attempt += 1
                    continue
                raise APITimeoutError(request=request) from exc
            except httpx.TransportError as exc:
                if attempt < retries:
                    self._sleep(retry_delay(attempt))
                    attempt += 1
                    continue
                raise APIConnectionError(f"Connection error: {exc}", request=request) from exc
            if response.status_code < 400:
                return response
            if stream:
                response.read()
            response.close()
            error = status_error_from_response(response)
            if attempt < retries and is_retryable_status(response.status_code, response.headers, error.code):
                self._sleep(retry_delay(attempt, response.headers))
                attempt += 1
                continue
            raise error


from .resources.batches import Batches  # noqa: E402
from .resources.file_search_stores import FileSearchStores  # noqa: E402
from .resources.files import Files  # noqa: E402
from .resources.interactions import Interactions  # noqa: E402
