"""The Gemini model and agent ids this package knows: what ``%interact models`` lists, and what the embedded
local server answers for (any other id gets the API's 404 ``model_not_found`` there too, so a typo in ``-m``
fails offline as it would online). More ids are taken from ``GEMINI_MAGICS_LOCAL_MODELS`` (comma-separated)
or the server's ``models=`` / ``gemini-magics serve --model-id``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["KnownModel", "KNOWN_MODELS", "MODELS_ENV", "LOCAL_ENGINE_IDS", "known_ids", "output_limit"]

MODELS_ENV = "GEMINI_MAGICS_LOCAL_MODELS"


@dataclass(frozen=True)
class KnownModel:
    id: str
    note: str
    max_output_tokens: int | None = None
    """The model's cap on ``max_output_tokens`` (None for agents, which take no generation config)."""


KNOWN_MODELS = (
    KnownModel("gemini-3-flash-preview", "fast general model (default)", 65_536),
    KnownModel("gemini-3.1-pro-preview", "strongest reasoning", 65_536),
    KnownModel("gemini-3-pro-preview", "strong reasoning", 65_536),
    KnownModel("gemini-2.5-flash", "stable, fast", 65_536),
    KnownModel("gemini-2.5-flash-lite", "stable, cheapest", 65_536),
    KnownModel("gemini-2.5-pro", "stable, strong", 65_536),
    KnownModel("gemini-3-pro-image-preview", "image generation (--image default)", 32_768),
    KnownModel("gemini-2.5-flash-image", "image generation, fast", 32_768),
    KnownModel("gemini-2.5-flash-preview-tts", "speech (--audio default)", 16_384),
    KnownModel("veo-3.1-generate-preview", "video (--video default; minutes, in the background)"),
    KnownModel("veo-3.1-fast-generate-preview", "video, faster"),
    KnownModel("gemini-2.5-pro-preview-tts", "speech, higher quality", 16_384),
    KnownModel("deep-research-pro-preview-12-2025", "agent: --agent (runs in the background; %interact wait)"),
    KnownModel("deep-research-preview-04-2026", "agent: --agent"),
    KnownModel("deep-research-max-preview-04-2026", "agent: --agent, the most thorough"),
)

LOCAL_ENGINE_IDS = frozenset({"scripted", "smollm2"})
"""The local engines' own names, which name a model there too (``local:…`` ids as well)."""


def known_ids(extra: Iterable[str] = ()) -> frozenset[str]:
    """Every id a local server answers for: the known ones, its engines', ``extra`` and the environment's."""
    configured = [name.strip() for name in os.environ.get(MODELS_ENV, "").split(",")]
    return frozenset(m.id for m in KNOWN_MODELS) | LOCAL_ENGINE_IDS | {n for n in [*extra, *configured] if n}


def output_limit(model: str) -> int | None:
    """The most output tokens ``model`` takes in one answer, when known."""
    return next((m.max_output_tokens for m in KNOWN_MODELS if m.id == model.removeprefix("models/")), None)
