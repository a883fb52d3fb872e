"""Defaults shared by the client, the server and the magic (no heavy imports here)."""

from __future__ import annotations

import os

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1beta"
DEFAULT_API_REVISION = "2026-05-20"
DEFAULT_MODEL = "gemini-3-flash-preview"
THINKING_LEVELS = ("minimal", "low", "medium", "high", "xhigh")
ASPECT_RATIOS = (
    "1:1",
    "1:4",
    "1:8",
    "2:3",
    "3:2",
    "3:4",
    "4:1",
    "4:3",
    "4:5",
    "5:4",
    "8:1",
    "9:16",
    "16:9",
    "21:9",
)
IMAGE_SIZES = ("512", "1K", "2K", "4K")
VIDEO_RESOLUTIONS = ("360p", "720p", "1080p", "4k")
VIDEO_ASPECT_RATIOS = ("16:9", "9:16")

LOCAL_NOTE_FIELD = "x_gemini_magics_local"
"""The embedded server's namespaced field on a block: what it did on this machine (ran code, drew or spoke a
stand-in). The server writes it; the views show it."""

API_KEY_ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
BASE_URL_ENV_VAR = "GEMINI_BASE_URL"
ENGINE_ENV_VAR = "GEMINI_MAGICS_ENGINE"
GGUF_ENV_VAR = "GEMINI_MAGICS_GGUF"

DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_RETRIES = 4
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0
MAX_STREAM_RESUMES = 5

UPLOAD_CHUNK_SIZE = 8 * 1024 * 1024

TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "incomplete", "budget_exceeded"})


def api_key_from_env() -> tuple[str | None, str | None]:
    """The API key from the environment and the name of the variable it came from."""
    for name in API_KEY_ENV_VARS:
        value = os.environ.get(name)
        if value:
            return value, name
    return None, None


SERVER_KEY_ENV_VAR = "GEMINI_MAGICS_SERVER_KEY"
"""The local server's key, for ``gemini-magics serve`` and the embedded child (never on a command line)."""

RETRY_CLOCK_ENV_VAR = "GEMINI_MAGICS_RETRY_CLOCK"
"""Scales every retry delay (tests set it small: back-offs happen for real, without the sleeping)."""
