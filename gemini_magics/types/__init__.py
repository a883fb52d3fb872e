"""Typed models of the Interactions API, both schema generations."""

from __future__ import annotations

from . import content, events, files, interaction
from .content import *  # noqa: F403
from .events import *  # noqa: F403
from .files import *  # noqa: F403
from .interaction import *  # noqa: F403

__all__ = [*content.__all__, *events.__all__, *files.__all__, *interaction.__all__]
