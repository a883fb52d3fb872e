"""Following a background interaction (an agent's, typically) to its end, with its progress.

Long runs lose their streams: the real API cuts them (a 503 at ten minutes) and resumes can stall. So
:func:`follow` reads the run's events through ``GET …?stream=true``, resuming from the last event id,
and when no event comes for ``stall`` seconds (or the stream cannot be resumed) it polls the resource
instead, trying the stream again from where it left off every few polls. Whatever it reads, it hands
to ``on_progress`` as the interaction so far, so a view can show status, thought summaries and tool
steps. It returns the final interaction, always fetched whole.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MagicError

if TYPE_CHECKING:
    from .._accumulate import InteractionAccumulator
    from .._client import Client
    from ..types.interaction import Interaction

__all__ = ["Progress", "follow"]

POLLS_BEFORE_RESTREAM = 4
_END = object()


@dataclass
class Progress:
    """What a progress view shows of a run still going."""

    interaction: Interaction | None = None
    mode: str = "connecting"
    """``streaming``, ``polling`` (the stream stalled or was cut), ``ended`` or ``connecting``."""

    @property
    def status(self) -> str:
        return (self.interaction.status if self.interaction else None) or "in_progress"


def follow(
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
    while not _stream_once(client, interaction_id, folded, seen, progress, on_progress, first_headers, stall):
        if stop is not None and stop.is_set():
            raise MagicError(f"stopped following {interaction_id}; it runs on (%interact wait {interaction_id})")
        first_headers = None
        progress.mode = "polling"
        final = _poll_a_while(client, interaction_id, progress, on_progress, poll_interval)
        if final is not None:
            return final
    final = client.interactions.get(interaction_id)
    progress.interaction, progress.mode = final, "ended"
    on_progress(progress)
    return final


def _stream_once(
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
        stream = client.interactions.get(interaction_id, stream=True, last_event_id=folded.last_event_id,
                                         extra_headers=headers)  # fmt: skip
    except GeminiError:
        return False
    # a reader thread feeds a queue, so a stall is noticed by a timeout here; the stalled stream is then
    # aborted (which wakes its blocked read) and left behind
    events: queue.Queue[Any] = queue.Queue()

    def read() -> None:
        try:
            with stream:
                for event in stream:
                    events.put(event)
        except Exception as exc:  # cut for good (resumes exhausted), an error event, or the abort below
            events.put(exc)
        events.put(_END)

    threading.Thread(target=read, daemon=True, name=f"follow-{interaction_id}").start()
    progress.mode = "streaming"
    on_progress(progress)
    while True:
        try:
            item = events.get(timeout=stall)
        except queue.Empty:
            stream.abort()
            return False
        if item is _END or isinstance(item, Exception):
            return folded.finished
        if item.event_id is not None:
            if item.event_id in seen:
                continue
            seen.add(item.event_id)
        folded.add(item)
        progress.interaction = folded.snapshot()
        on_progress(progress)


def _poll_a_while(
    client: Client,
    interaction_id: str,
    progress: Progress,
    on_progress: Callable[[Progress], None],
    poll_interval: float,
) -> Interaction | None:
    """Poll until the run ends (its final interaction) or it is time to try the stream again (None)."""
    for _ in range(POLLS_BEFORE_RESTREAM):
        interaction = client.interactions.get(interaction_id)
        if interaction.ended:
            progress.interaction, progress.mode = interaction, "ended"
            on_progress(progress)
            return interaction
        if interaction.steps or progress.interaction is None:
            progress.interaction = interaction
        else:  # a status-only resource: keep the steps streamed so far
            progress.interaction = progress.interaction.model_copy(update={"status": interaction.status})
        on_progress(progress)
        time.sleep(poll_interval)
    return None
