"""Reading an event stream: the one primitive every streamed answer and every followed run uses.

A stream's reads block, so a worker thread reads it and hands each event to the event loop; the loop
stays free (the Stop button, other cells' work) and a watchdog notices a stream that went quiet. Whatever
ends the reading — the end, an error event, a stall, a Stop or an interrupt — the stream is aborted and
the reader is out of it before anyone closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

from .._threads import in_thread
from ..errors import MagicError

__all__ = ["EventStream", "NoAnswer", "feed", "pump", "within"]

T = TypeVar("T")
_END = object()


class EventStream(Protocol):
    """What is read: an iterable of events that can be aborted from another thread."""

    def __iter__(self) -> Any: ...

    def abort(self) -> None: ...


class NoAnswer(MagicError):
    """No answer, or no further event, within the time allowed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"no answer from the server within {seconds:g} s (%config InteractMagics.timeout); the chain is unchanged"
        )


async def within(seconds: float, awaitable: Awaitable[T]) -> T:
    """``awaitable``, or :class:`NoAnswer` once ``seconds`` pass with no answer (the call is abandoned).

    ``asyncio.wait`` rather than ``wait_for``: the latter can swallow the cell's own cancellation
    (Kernel > Interrupt) when the awaited call completes in the same moment.
    """
    future = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({future}, timeout=seconds)
    except asyncio.CancelledError:  # the cell's own cancellation reaches the call it waits for (its
        future.cancel()  # abandoned-callback then closes what the call opens)
        raise
    if not done:
        future.cancel()
        raise NoAnswer(seconds)
    return future.result()


async def feed(events: EventStream, on_event: Callable[[Any], None], idle: float | None = None) -> bool:
    """Hand the stream's events to ``on_event``; True if the user interrupted (the stream is aborted).

    ``idle``: seconds without an event before the stream counts as dead (:class:`NoAnswer`).
    """
    try:
        async with contextlib.aclosing(pump(events, idle)) as pumped:
            async for event in pumped:
                on_event(event)
    except (KeyboardInterrupt, asyncio.CancelledError):
        events.abort()
        return True
    return False


async def pump(events: EventStream, idle: float | None = None) -> AsyncGenerator[Any, None]:
    """The stream's events, read in a worker thread so the event loop keeps running meanwhile.

    ``idle``: a watchdog aborts the stream when no event has come for that long (:class:`NoAnswer`).
    An error the stream raises (cut for good, an error event) is raised here.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    last = [loop.time(), False]  # when the last event came; whether the watchdog fired

    def put(item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: the reader was abandoned
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def read() -> None:
        try:
            for event in events:
                put(event)
        except BaseException as exc:  # handed to the loop thread, which raises it
            put(exc)
        finally:
            put(_END)

    def watch() -> None:
        quiet = loop.time() - last[0]
        if quiet >= (idle or 0):
            last[1] = True
            events.abort()
        else:  # due again exactly when the stream will have been quiet for ``idle``
            watchdog[0] = loop.call_later((idle or 0) - quiet, watch)

    watchdog = [loop.call_later(idle, watch)] if idle else []
    reader = threading.Thread(target=read, daemon=True, name="gemini-magics-stream")
    reader.start()
    try:
        while True:
            item = await queue.get()
            last[0] = loop.time()
            if item is _END:
                if last[1]:
                    raise NoAnswer(idle or 0)
                return
            if isinstance(item, BaseException):
                if last[1]:  # the abort's own error: the stall is what happened
                    raise NoAnswer(idle or 0)
                raise item
            yield item
    finally:
        for handle in watchdog:
            handle.cancel()
        events.abort()
        # the reader must be out of the stream's generator before anyone closes it
        await in_thread(lambda: reader.join(5))
