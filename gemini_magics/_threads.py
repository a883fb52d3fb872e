"""Blocking calls and event loops: a call in a thread the loop can await, and a coroutine run to its end
from blocking code. Shared by the runner and the tool loop; no IPython, no HTTP."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .errors import MagicError, Stopped

__all__ = ["SHARED_LOOP", "in_thread", "run_blocking", "shared_loop"]

T = TypeVar("T")


async def in_thread(call: Callable[[], T], *, abandoned: Callable[[T], None] | None = None) -> T:
    """``call()`` in a daemon thread (a blocking HTTP call); the event loop stays free meanwhile.

    Unlike ``asyncio.to_thread`` the thread is not the loop's executor's, so an interrupted cell never
    waits for a request it no longer needs. ``abandoned`` gets the value when nobody awaits it any more
    (a stream that finished opening after a Stop, a time-out or an interrupt): it closes what it opened.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(setter: Callable[[Any], None], value: Any, succeeded: bool) -> None:
        if not future.done():
            setter(value)
        elif succeeded and abandoned is not None:
            abandoned(value)

    def work() -> None:
        try:
            value = call()
        except BaseException as exc:
            outcome: tuple[Callable[[Any], None], Any, bool] = (future.set_exception, exc, False)
        else:
            outcome = (future.set_result, value, True)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:  # the loop is gone: nobody waits for this any more
            if outcome[2] and abandoned is not None:
                abandoned(outcome[1])

    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(work,), daemon=True, name="gemini-magics-call").start()
    return await future


class SharedLoop:
    """The one event loop blocking code runs its coroutines on (cells outside a kernel's loop, background
    followers, ``%interact wait``): made on first use, running in a daemon thread, made anew if it died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, daemon=True, name="gemini-magics-loop")
                self._thread.start()
                self._loop = loop
            return self._loop

    def runs_here(self) -> bool:
        """True on the loop's own thread, where waiting for it would wait forever."""
        return self._thread is threading.current_thread()


SHARED_LOOP = SharedLoop()


def shared_loop() -> asyncio.AbstractEventLoop:
    """The shared loop (made on first use): where background followers run, and their views refresh."""
    return SHARED_LOOP.get()


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on the shared event loop and return its value.

    The caller's thread only waits, so Ctrl-C (or Kernel > Interrupt) lands there: the coroutine is
    then cancelled, cleans up (closing its connection) and its :class:`Stopped` error is raised here.
    """
    try:  # "too many open files" making the loop must still end the cell, with that error
        loop = SHARED_LOOP.get()
    except BaseException:
        coroutine.close()
        raise
    if SHARED_LOOP.runs_here():  # called from a callback on the loop itself: a loop of its own, in a thread
        return _on_own_loop(coroutine)
    context = contextvars.copy_context()
    tasks: list[asyncio.Task[T]] = []
    finished = threading.Event()

    def start() -> None:
        task = context.run(loop.create_task, coroutine)  # the task runs in the caller's context
        task.add_done_callback(lambda _: finished.set())
        tasks.append(task)

    loop.call_soon_threadsafe(start)
    try:
        # an Event, not a future's result(): the wait is what Ctrl-C interrupts, and it can be resumed
        finished.wait()
    except KeyboardInterrupt:
        loop.call_soon_threadsafe(lambda: tasks and tasks[0].cancel())  # after start(): the loop keeps order
        finished.wait(10)
        error = _error_of(tasks[0]) if tasks and tasks[0].done() else None
        if isinstance(error, MagicError):
            raise error from None
        raise Stopped("interrupted: the chain is unchanged") from None
    error = _error_of(tasks[0])
    if isinstance(error, asyncio.CancelledError):
        raise Stopped("interrupted: the chain is unchanged") from None
    if error is not None:
        raise error
    return tasks[0].result()


def _error_of(task: asyncio.Task[Any]) -> BaseException | None:
    return asyncio.CancelledError() if task.cancelled() else task.exception()


def _on_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    box: dict[str, Any] = {}

    def main() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=contextvars.copy_context().run, args=(main,), daemon=True)
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
