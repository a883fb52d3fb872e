"""Following a background interaction (an agent's, typically) to its end, with its progress.

Long runs lose their streams: the real API cuts them (a 503 at ten minutes) and resumes can stall. So
:func:`follow` reads the run's events through ``GET …?stream=true``, resuming from the last event id,
and when no event comes for ``stall`` seconds (or the stream cannot be resumed) it polls the resource
instead, trying the stream again from where it left off every few polls. Whatever it reads, it hands
to ``on_progress`` as the interaction so far, so a view can show status, thought summaries and tool
steps. It returns the final interaction, always fetched whole. Streams are read by the one primitive
every streamed answer uses (:func:`.stream.pump`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._threads import in_thread
from ..errors import MagicError
from .stream import NoAnswer, pump

if TYPE_CHECKING:
    from .._accumulate import InteractionAccumulator
    from .._client import Client
    from ..types.interaction import Interaction

__all__ = ["Progress", "follow"]

POLLS_BEFORE_RESTREAM = 4


@dataclass
class Progress:
    """What a progress view shows of a run still going."""

    interaction: Interaction | None = None
    mode: str = "connecting"
    """``streaming``, ``polling`` (the stream stalled or was cut), ``ended`` or ``connecting``."""

    @property
    def status(self) -> str:
        return (self.interaction.status if self.interaction else None) or "in_progress"


async def follow(
    client: Client,
    interaction_id: str,
    *,
    on_progress: Callable[[Progress], None],
    headers: Mapping[str, str] | None = None,
    stall: float = 60.0,
    poll_interval: float = 1.0,
    stop: threading.Event | None = None,
) -> Interaction:
    """Stream, resume and poll ``interaction_id`` until it ends; the final interaction.

    ``headers`` go with the first stream only (the scripted engine's test controls must not repeat on
    resumes). ``stop`` set: following ends between two rounds (the run itself goes on).
    """
    from .._accumulate import InteractionAccumulator

    progress = Progress()
    folded = InteractionAccumulator()  # one fold over every stream opened, so progress never goes back
    seen: set[str] = set()
    first_headers = dict(headers) if headers else None
    while not await _stream_once(client, interaction_id, folded, seen, progress, on_progress, first_headers, stall):
        if stop is not None and stop.is_set():
            raise MagicError(f"stopped following {interaction_id}; it runs on (%interact wait {interaction_id})")
        first_headers = None
        progress.mode = "polling"
        final = await _poll_a_while(client, interaction_id, progress, on_progress, poll_interval)
        if final is not None:
            return final
    final = await in_thread(lambda: client.interactions.get(interaction_id))
    progress.interaction, progress.mode = final, "ended"
    on_progress(progress)
    return final


async def _stream_once(
    client: Client,
    interaction_id: str,
    folded: InteractionAccumulator,
    seen: set[str],
    progress: Progress,
    on_progress: Callable[[Progress], None],
    headers: Mapping[str, str] | None,
    stall: float,
) -> bool:
    """Read the event stream from the last event seen; True when it reached the end of the run."""
    from .._exceptions import GeminiError

    try:
        stream = await in_thread(
            lambda: client.interactions.get(interaction_id, stream=True, last_event_id=folded.last_event_id,
                                            extra_headers=headers),
            abandoned=lambda opened: opened.close(),
        )  # fmt: skip
    except GeminiError:
        return False
    progress.mode = "streaming"
    on_progress(progress)
    try:
        with stream:
            async with contextlib.aclosing(pump(stream, idle=stall)) as events:
                async for event in events:
                    _fold(event, folded, seen, progress, on_progress)
    except NoAnswer:  # stalled: poll instead
        return False
    except Exception:  # cut for good (resumes exhausted) or an error event: whatever the fold saw decides
        return folded.finished
    return folded.finished


def _fold(event: Any, folded: InteractionAccumulator, seen: set[str], progress: Progress,
          on_progress: Callable[[Progress], None]) -> None:  # fmt: skip
    if event.event_id is not None:
        if event.event_id in seen:  # a resume repeats what was already folded
            return
        seen.add(event.event_id)
    folded.add(event)
    progress.interaction = folded.snapshot()
    on_progress(progress)


async def _poll_a_while(
    client: Client,
    interaction_id: str,
    progress: Progress,
    on_progress: Callable[[Progress], None],
    poll_interval: float,
) -> Interaction | None:
    """Poll until the run ends (its final interaction) or it is time to try the stream again (None)."""
    for _ in range(POLLS_BEFORE_RESTREAM):
        interaction = await in_thread(lambda: client.interactions.get(interaction_id))
        if interaction.ended:
            progress.interaction, progress.mode = interaction, "ended"
            on_progress(progress)
            return interaction
        if interaction.steps or progress.interaction is None:
            progress.interaction = interaction
        else:  # a status-only resource: keep the steps streamed so far
            progress.interaction = progress.interaction.model_copy(update={"status": interaction.status})
        on_progress(progress)
        await asyncio.sleep(poll_interval)
    return None
