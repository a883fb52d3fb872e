"""Engines answer interactions for the local server; ``make_engine`` picks one by name."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..._constants import ENGINE_ENV_VAR
from .base import Engine, EngineRequest

if TYPE_CHECKING:
    pass

__all__ = ["Engine", "EngineRequest", "make_engine", "default_engine_name"]


def default_engine_name() -> str:
    """``GEMINI_MAGICS_ENGINE`` if set; else ``smollm2`` when its model is installed, else ``scripted``."""
    chosen = os.environ.get(ENGINE_ENV_VAR)
    if chosen:
        return chosen
    from .smollm2 import find_model_path

    return "smollm2" if find_model_path() is not None else "scripted"


def make_engine(name: str | None = None) -> Engine:
    name = name or default_engine_name()
    if name == "scripted":
        from .scripted import ScriptedEngine

        return ScriptedEngine()
    if name == "smollm2":
        from .smollm2 import SmolLM2Engine

        return SmolLM2Engine()
    raise ValueError(f"unknown engine {name!r}: use 'smollm2' or 'scripted'")
