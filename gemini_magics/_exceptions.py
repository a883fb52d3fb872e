"""One exception tree for the whole package.

``GeminiError`` is the root. HTTP failures are ``APIStatusError`` subclasses chosen by status code;
transport failures are ``APIConnectionError`` (``APITimeoutError`` for time-outs). Messages carry
the server's own message but never a credential.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "GeminiError",
    "MissingAPIKeyError",
    "APIError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
    "APIConnectionError",
    "APITimeoutError",
    "APIResponseValidationError",
    "StreamError",
]


class GeminiError(Exception):
    """Base class of every error this package raises on purpose."""


class MissingAPIKeyError(GeminiError):
    def __init__(self) -> None:
        super().__init__(
            "No API key: pass Client(api_key=...) or set the GEMINI_API_KEY (or GOOGLE_API_KEY) "
            "environment variable, or point GEMINI_BASE_URL at a server that needs none."
        )


class APIError(GeminiError):
    """An error that concerns one request to the API."""

    def __init__(self, message: str, *, request: httpx.Request | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body


class APIStatusError(APIError):
    """The server answered with a 4xx or 5xx status."""

    status_code: int

    def __init__(self, message: str, *, response: httpx.Response, body: Any) -> None:
        super().__init__(message, request=response.request, body=body)
        self.response = response
        self.status_code = response.status_code
        error = body.get("error") if isinstance(body, dict) else None
        self.code: str | int | None = error.get("code") if isinstance(error, dict) else None
        self.server_message: str | None = (
            error.get("message") if isinstance(error, dict) else (body if isinstance(body, str) else None)
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code}, message={self.message!r})"


class BadRequestError(APIStatusError):
    status_code = 400


class AuthenticationError(APIStatusError):
    status_code = 401


class PermissionDeniedError(APIStatusError):
    status_code = 403


class NotFoundError(APIStatusError):
    status_code = 404


class ConflictError(APIStatusError):
    status_code = 409


class UnprocessableEntityError(APIStatusError):
    status_code = 422


class RateLimitError(APIStatusError):
    status_code = 429


class InternalServerError(APIStatusError):
    pass


class APIConnectionError(APIError):
    """The request never got an answer: connection refused, reset, or cut mid-body."""

    def __init__(self, message: str = "Connection error.", *, request: httpx.Request | None = None) -> None:
        super().__init__(message, request=request)


class APITimeoutError(APIConnectionError):
    def __init__(self, *, request: httpx.Request | None = None) -> None:
        super().__init__("Request timed out.", request=request)


class APIResponseValidationError(APIError):
    """The server answered 2xx with a body this client cannot read."""


class StreamError(APIError):
    """The server sent an ``error`` event in the middle of a stream."""

    def __init__(self, code: str | int | None, message: str, *, body: Any = None) -> None:
        super().__init__(f"{code}: {message}" if code else message, body=body)
        self.code = code
        self.server_message = message


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_from_response(response: httpx.Response) -> APIStatusError:
    """Build the exception for an error response; reads the body, which must be loaded."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        detail = str(error["message"])
    elif isinstance(body, str) and body.strip():
        detail = body.strip()[:300]
    else:
        detail = response.reason_phrase or "error"
    message = f"Error code: {response.status_code} - {detail}"
    cls = _STATUS_CLASSES.get(response.status_code)
    if cls is None:
        cls = InternalServerError if response.status_code >= 500 else APIStatusError
    return cls(message, response=response, body=body)
