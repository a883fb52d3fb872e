"""The magic's domain errors: why a cell or subcommand cannot go on, in one line for the user.

They sit beside the client's tree (``_exceptions.GeminiError``): the request builder, the runner and
the row runner raise these (or let a client error through), and the magic turns both into a one-line
``UsageError`` in one place. Nothing here imports IPython, so the pipeline stays testable without it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._exceptions import GeminiError

__all__ = [
    "MagicError", "OptionError", "TemplateError", "SchemaMismatch", "InteractionEnded", "Stopped",
    "BackendUnavailable", "describe_api_error", "client_error_line", "connection_broke", "interrupted",
]  # fmt: skip


class MagicError(Exception):
    """A cell or subcommand cannot go on; ``str(error)`` is the one line the user sees."""


class OptionError(MagicError):
    """The options or the cell are wrong: nothing was sent and nothing changed."""


class TemplateError(OptionError, ValueError):
    """A ``{{reference}}`` that cannot be resolved."""


class SchemaMismatch(MagicError):
    """The answer arrived but does not match ``--schema``; its raw text is kept in ``%interact last``."""


class InteractionEnded(MagicError):
    """The interaction ended without an answer to keep (failed, cancelled, incomplete)."""


class Stopped(MagicError):
    """The user stopped the answer (Stop, Cancel, Kernel > Interrupt, Ctrl-C); what arrived is kept.
    The cell ends with a neutral badge (``kind``: stopped, cancelled or interrupted), and still fails."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind or ("interrupted" if message.startswith("interrupted") else
                             "cancelled" if message.startswith("cancelled") else "stopped")  # fmt: skip


class BackendUnavailable(MagicError):
    """No backend can be had; the message says how to get one."""


BLOCKED_CODES = frozenset({"safety", "prohibited_content", "blocklist", "spii", "recitation", "image_safety"})
"""Error codes of a generation the API blocked (not a failure that another attempt would get past)."""
CODE_HINTS = {
    "model_not_found": "no such model: check the name given to -m (or %config InteractMagics.model)",
    "quota_exceeded": "the API quota is used up: re-run when it resets, or raise the quota",
    "payment_required": "the prepaid credit is used up: add credit (retrying will not help)",
    "parameter_unknown": "the API does not know a field this request sent: update gemini-magics",
    "unimplemented": "the API does not offer this (for this model): retrying will not help",
}
"""What to do, for documented error codes that say more than their HTTP status."""


def describe_api_error(exc: GeminiError, base_url: str, not_found: str | None = None) -> str:
    """A client error as one line saying what happened and what to do about it."""
    from ._exceptions import APIConnectionError, APIStatusError, StreamError

    if isinstance(exc, APIStatusError):
        message = exc.server_message or exc.message
        if exc.code in CODE_HINTS:
            return f"the server answered {exc.status_code} {exc.code}: {message} ({CODE_HINTS[str(exc.code)]})"
        hints = {
            401: "check GEMINI_API_KEY",
            403: "check that the key may use this model",
            404: not_found
            or "the model or a previous interaction was not found: check -m, or start afresh with --new",
            429: "rate limited: wait and re-run the cell",
        }
        hint = hints.get(
            exc.status_code,
            "fix the request" if exc.status_code < 500 else "the server failed: re-run the cell later",
        )
        return f"the server answered {exc.status_code}: {message} ({hint})"
    if isinstance(exc, APIConnectionError):
        return f"cannot reach {base_url}: {exc.message} (check the server, or GEMINI_BASE_URL)"
    if isinstance(exc, StreamError):
        if exc.code in BLOCKED_CODES:  # re-running the same prompt gets the same answer
            return f"the model's answer was blocked ({exc.code}): {exc.server_message} (rephrase the prompt)"
        code = f" ({exc.code})" if exc.code else ""
        return f"the stream reported an error{code}: {exc.server_message} (re-run the cell)"
    return str(exc)


def connection_broke(exc: Exception) -> bool:
    """Whether ``exc`` is the client's word for a connection that failed, timed out or broke mid-stream."""
    module = sys.modules.get("gemini_magics._exceptions")  # not loaded: cannot be one of its errors
    return module is not None and isinstance(exc, module.APIConnectionError | module.StreamError)


def client_error_line(exc: Exception, base_url: str) -> str | None:
    """The one line for an error of the client's tree, or None for any other exception."""
    module = sys.modules.get("gemini_magics._exceptions")  # not loaded: cannot be one of its errors
    if module is None or not isinstance(exc, module.GeminiError):
        return None
    return describe_api_error(exc, base_url)


def interrupted(exc: BaseException) -> bool:
    """Ctrl-C, or Kernel > Interrupt (which cancels an awaited cell); asyncio is not imported for this."""
    asyncio = sys.modules.get("asyncio")
    return isinstance(exc, KeyboardInterrupt) or (
        asyncio is not None and isinstance(exc, asyncio.CancelledError)
    )
