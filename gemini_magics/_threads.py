"""Blocking calls and event loops: a call in a thread the loop can await, and a coroutine run to its end
from blocking code. Shared by the runner and the tool loop; no IPython, no HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .errors import MagicError, Stopped

__all__ = ["in_thread", "run_blocking"]

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


def run_blocking(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on a private event loop in a worker thread, and return its value.

    The caller's thread only waits, so Ctrl-C (or Kernel > Interrupt) lands there: the coroutine is
    then cancelled, cleans up (closing its connection) and its :class:`Stopped` error is raised here.
    """
    box: dict[str, Any] = {}
    ready, finished = threading.Event(), threading.Event()

    def main() -> None:
        loop = None
        try:  # the loop is made inside: "too many open files" there must still end the cell
            loop = asyncio.new_event_loop()
            task = loop.create_task(coroutine)
            box.update(loop=loop, task=task)
            ready.set()
            box["value"] = loop.run_until_complete(task)
        except BaseException as exc:
            box["error"] = exc
        finally:
            if loop is not None:
                with contextlib.suppress(Exception):
                    _cancel_leftovers(loop)
                    loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
            else:
                coroutine.close()
            ready.set()
            finished.set()

    worker = threading.Thread(
        target=contextvars.copy_context().run, args=(main,), daemon=True, name="gemini-magics-cell"
    )
    worker.start()
    try:
        # an Event, not Thread.join: a Ctrl-C that interrupts join() can mark a running thread as
        # stopped (CPython's bpo-45274 handling), and the second join would then not wait
        finished.wait()
    except KeyboardInterrupt:
        ready.wait()
        if "task" in box:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                box["loop"].call_soon_threadsafe(box["task"].cancel)
        finished.wait(10)
        error = box.get("error")
        if isinstance(error, MagicError):
            raise error from None
        raise Stopped("interrupted: the chain is unchanged") from None
    if "error" in box:
        error = box["error"]
        if isinstance(error, asyncio.CancelledError):
            raise Stopped("interrupted: the chain is unchanged") from None
        raise error
    return box["value"]  # type: ignore[no-any-return]


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what the cell left running (calls it abandoned on a time-out) and let each see its cancel,
    so closing the loop destroys no pending task."""
    leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in leftovers:
        task.cancel()
    if leftovers:
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
