"""The retry policy, kept pure: what to retry and how long to wait. The loop lives in the client."""

from __future__ import annotations

import email.utils
import os
import random
import time
from collections.abc import Mapping

from ._constants import INITIAL_RETRY_DELAY, MAX_RETRY_AFTER, MAX_RETRY_DELAY, RETRY_CLOCK_ENV_VAR

RETRYABLE_STATUSES = frozenset({408, 409, 429})
NEVER_RETRIED_STATUSES = frozenset({501})
"""``unimplemented``: asking again cannot make the server implement it."""
NEVER_RETRIED_CODES = frozenset({
    "quota_exceeded", "payment_required", "unimplemented", "failed_precondition", "already_exists",
    "invalid_request", "parameter_unknown", "model_not_found", "permission_denied", "authentication",
    "out_of_range",
})
"""Documented error codes that another attempt cannot fix (a daily quota, billing, a bad request), even
when their HTTP status is one that is usually retried (429, 409, 5xx)."""


def is_retryable_status(status_code: int, headers: Mapping[str, str] | None = None, code: object = None) -> bool:
    """Whether another attempt may succeed, from the status, the error's documented ``code`` and the
    server's own ``x-should-retry`` (which the API, like Stainless SDKs, may send to veto or force one)."""
    if headers is not None:
        override = headers.get("x-should-retry")
        if override == "true":
            return True
        if override == "false":
            return False
    if status_code in NEVER_RETRIED_STATUSES or code in NEVER_RETRIED_CODES:
        return False
    return status_code in RETRYABLE_STATUSES or status_code >= 500


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``; None if absent."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    parsed = email.utils.parsedate_to_datetime(value) if _looks_like_date(value) else None
    if parsed is None:
        return None
    return parsed.timestamp() - (time.time() if now is None else now)


def _looks_like_date(value: str) -> bool:
    try:
        email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return True


def retry_delay(
    retries_done: int,
    headers: Mapping[str, str] | None = None,
    *,
    rng: random.Random | None = None,
    now: float | None = None,
) -> float:
    """Delay before the next attempt.

    A server-given delay is honoured when it is positive and at most ``MAX_RETRY_AFTER`` seconds;
    otherwise exponential backoff from 0.5 s, capped at 8 s, with up to 25 % jitter taken off. Either is
    scaled by ``$GEMINI_MAGICS_RETRY_CLOCK`` (default 1): the retry clock's seam, so a test suite can run
    every back-off for real without sleeping through it.
    """
    if headers is not None:
        asked = parse_retry_after(headers, now=now)
        if asked is not None and 0 < asked <= MAX_RETRY_AFTER:
            return asked * _clock()
    base = min(INITIAL_RETRY_DELAY * (2.0**retries_done), MAX_RETRY_DELAY)
    jitter = 1.0 - 0.25 * (rng or random).random()
    return base * jitter * _clock()


def _clock() -> float:
    try:
        return max(0.0, float(os.environ.get(RETRY_CLOCK_ENV_VAR, "1")))
    except ValueError:
        return 1.0
