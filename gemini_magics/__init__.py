"""gemini-magics: the ``%%interact`` magic for Gemini's Interactions API, and a typed client.

``%load_ext gemini_magics`` must stay fast, so nothing heavy is imported here: the client and
types load on first attribute access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ._client import Client
    from ._exceptions import APIError, APIStatusError, GeminiError
    from ._media import media
    from ._streaming import InteractionStream
    from .tools import tool

__all__ = [
    "__version__", "Client", "InteractionStream", "GeminiError", "APIError", "APIStatusError",
    "tool", "media", "load_ipython_extension", "unload_ipython_extension",
]  # fmt: skip

_LAZY = {
    "Client": "._client",
    "InteractionStream": "._streaming",
    "GeminiError": "._exceptions",
    "APIError": "._exceptions",
    "APIStatusError": "._exceptions",
    "tool": ".tools",
    "media": "._media",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'gemini_magics' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name, __name__), name)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    from .magics import unload

    unload(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where Jupyter finds the prebuilt JupyterLab extension (``jupyter labextension develop`` links it)."""
    return [{"src": "labextension", "dest": "gemini-magics"}]
