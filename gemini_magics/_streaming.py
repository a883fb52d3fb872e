"""InteractionStream: typed events from an SSE response, resumed transparently when cut."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Generator, Iterator
from types import TracebackType

import httpx

from ._accumulate import InteractionAccumulator
from ._constants import MAX_STREAM_RESUMES
from ._exceptions import APIConnectionError, StreamError
from ._sse import iter_data, parse_event
from .types.events import ErrorEvent, InteractionEvent
from .types.interaction import Interaction

Reconnect = Callable[[str, "str | None"], httpx.Response]
"""Opens ``GET /interactions/{id}?stream=true&last_event_id=...``; given the id and last event id."""


class InteractionStream:
    """An iterator of typed events and a context manager that closes the HTTP response.

    ``stream.interaction`` is the Interaction accumulated so far; ``stream.until_done()`` drains the
    stream and returns the final one. When the connection drops mid-stream for a stored interaction,
    the stream reconnects from the last event id and drops duplicates, so the caller sees one
    uninterrupted sequence. Errors sent in the stream raise :class:`StreamError`.
    """

    def __init__(
        self, response: httpx.Response, *, reconnect: Reconnect | None, resumable: bool = True
    ) -> None:
        self.response = response
        self._reconnect = reconnect
        self._resumable = resumable
        self._accumulator = InteractionAccumulator()
        # a reader thread folds events while a view thread takes snapshots
        self._lock = threading.Lock()
        self._iterator = self._events()
        self._hops: list[Interaction] = []
        """Earlier hops of an answer handed back in hops (``requires_continuation``), each whole."""
        self._offset = 0
        """Steps of the earlier hops: where this hop's step indexes start in the one answer."""
        self.next_hop: Callable[[str, str], httpx.Response] | None = None
        """Opens the stream of the hop continuing from a token (issued by the given interaction)."""
        self.resumes = 0
        self.closed = False
        self.aborted = False

    def __iter__(self) -> Iterator[InteractionEvent]:
        return self._iterator

    def __next__(self) -> InteractionEvent:
        return next(self._iterator)

    def __enter__(self) -> InteractionStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._iterator.close()
            self.response.close()

    def abort(self) -> None:
        """Stop reading, from any thread: the iteration ends quietly and is not resumed.

        Unlike :meth:`close`, it is safe while another thread is iterating (it only closes the
        connection under it); a server then cancels a foreground interaction nobody reads any more.
        """
        self.aborted = True
        # closing the response does not wake a read blocked on its socket in another thread; shutting the
        # socket down does (a stalled stream would otherwise hold its reader until the read timeout)
        stream = self.response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.response.close()

    @property
    def interaction(self) -> Interaction:
        """The Interaction so far (safe to read from another thread while this one is iterated)."""
        with self._lock:
            current = self._accumulator.snapshot()
            if not self._hops:
                return current
            from ._continuation import merge_hops

            return merge_hops([*self._hops, current])

    @property
    def interaction_id(self) -> str | None:
        return self._accumulator.interaction_id

    @property
    def last_event_id(self) -> str | None:
        return self._accumulator.last_event_id

    def until_done(self) -> Interaction:
        for _ in self._iterator:
            pass
        return self.interaction

    def text_deltas(self) -> Iterator[str]:
        """Only the text as it arrives (convenience for terminals and scripts)."""
        from .types.content import TextContent

        for event in self._iterator:
            delta = getattr(event, "delta", None)
            if isinstance(delta, TextContent):
                yield delta.text

    def _events(self) -> Generator[InteractionEvent, None, None]:
        seen: set[str] = set()  # spans resumes and hops: one call of this generator reads every response
        try:
            while True:
                try:
                    for data in iter_data(self.response):
                        event = self._fold(parse_event(data), seen)
                        if event is not None:
                            yield event
                except (httpx.TransportError, httpx.StreamClosed) as exc:
                    if self.aborted:
                        return
                    self._resume_or_raise(exc)
                    continue
                if self.aborted:
                    return
                if self._accumulator.finished and self._continue():
                    continue
                if self._accumulator.finished or not self._can_resume():
                    return
                # a clean end without interaction.completed is a cut too
                self._resume_or_raise(None)
        finally:
            self.response.close()

    def _fold(self, event: InteractionEvent, seen: set[str]) -> InteractionEvent | None:
        """Fold one event; what the caller sees of it (None: a replayed event, or a hop's own bookkeeping)."""
        event_id = event.event_id
        if event_id is not None:
            if event_id in seen:  # a replay after a cut may overlap what came before
                return None
            seen.add(event_id)
        with self._lock:
            self._accumulator.add(event)
        if isinstance(event, ErrorEvent):
            raise StreamError(event.error.code, event.error.message, body=event.to_dict())
        if self._hops and event.event_type in ("interaction.created", "interaction.status_update"):
            return None  # a later hop continues the same answer: no second start
        if self.next_hop is not None and event.event_type == "interaction.completed" and self._hop_token():
            return None  # not the end: the next hop follows
        if self._offset:
            index = getattr(event, "index", None)
            if isinstance(index, int):
                return event.model_copy(update={"index": index + self._offset})
        return event

    def _hop_token(self) -> str | None:
        from ._continuation import next_token

        with self._lock:
            return next_token(self._accumulator.snapshot(), None)

    def _continue(self) -> bool:
        """The hop ended ``requires_continuation``: open the next one (True), or it was the last (False)."""
        from ._continuation import MAX_HOPS

        token = self._hop_token() if self.next_hop is not None else None
        if token is None or len(self._hops) + 1 >= MAX_HOPS:
            return False
        assert self.next_hop is not None
        with self._lock:
            finished = self._accumulator.snapshot()
            owner = finished.id
            self.response.close()
            self.response = self.next_hop(token, owner)
            # a later hop's steps continue the answer's: its user_input steps are not repeated
            self._hops.append(finished)
            self._offset += len(finished.steps or [])
            self._accumulator = InteractionAccumulator()
        return True

    def _can_resume(self) -> bool:
        return (
            self._resumable
            and self._reconnect is not None
            and self._accumulator.interaction_id is not None
            and self.resumes < MAX_STREAM_RESUMES
        )

    def _resume_or_raise(self, cause: Exception | None) -> None:
        self.response.close()
        if not self._can_resume():
            raise APIConnectionError(
                f"the stream was cut and cannot be resumed: {cause or 'no completion event'}"
            ) from cause
        assert self._reconnect is not None
        self.resumes += 1
        interaction_id = self._accumulator.interaction_id
        assert interaction_id is not None
        self.response = self._reconnect(interaction_id, self._accumulator.last_event_id)
