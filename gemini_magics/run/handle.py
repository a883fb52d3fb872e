"""One handle for every run the kernel follows in the background (an interaction, an agent, a batch job),
and one watcher: a thread that follows the run to its end inside one error boundary, so whatever
happens the handle says how it ended, ``done`` is set and the view is told.

Handles are state (the watcher writes them); their ``_repr_mimebundle_`` is the one line a cell shows.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import MagicError

if TYPE_CHECKING:
    from ..types.batches import Batch

__all__ = ["BackgroundRun", "BatchRun", "RunHandle", "watch"]


class RunHandle:
    """What every background run has: its id, model, ``-o`` name, status, result or error, and events."""

    def __init__(self, run_id: str, model: str, out: str | None, *, status: str) -> None:
        self.id = run_id
        self.model = model
        self.out = out
        self.status = status
        self.started = time.monotonic()
        self.result: Any = None
        self.error: str | None = None
        self.progress: Any = None
        """The latest progress the watcher saw (status, steps so far, streaming or polling)."""
        self.done = threading.Event()
        """Set when the watcher has finished (bound ``-o``, committed the turn, or failed)."""
        self.stopping = threading.Event()
        """Set to make the watcher stop following (the run itself goes on; ``%interact wait ID`` can re-attach)."""
        self.displayed = False
        """True when a view shows this run itself (and keeps that display up to date)."""
        self.reported = False
        """True once ``%interact wait`` has told how the run ended (a failed run fails one wait, not every one)."""


def watch(handle: RunHandle, follow: Callable[[], Any], *, view: Any, base_url: str) -> threading.Thread:
    """Follow the run in a thread: ``follow()`` returns its result (committed and bound by then) or raises;
    either way the handle says how it ended, ``done`` is set and ``view.finish(handle)`` is called."""
    from .._exceptions import GeminiError
    from ..errors import describe_api_error

    def main() -> None:
        try:
            handle.result = follow()
        except MagicError as exc:
            handle.error = str(exc)
        except GeminiError as exc:  # a background thread must report, not die silently
            handle.status, handle.error = "failed", describe_api_error(exc, base_url)
        except Exception as exc:  # e.g. the extension was unloaded and its client closed meanwhile
            handle.status, handle.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            if handle.error and handle.out:
                handle.error += f"; {handle.out!r} was not bound"
            handle.done.set()
            view.finish(handle)

    thread = threading.Thread(target=main, daemon=True, name=f"interact-{handle.id}")
    thread.start()
    return thread


class BackgroundRun(RunHandle):
    """The handle a ``--background`` (or ``--agent``) cell returns at once; ``.result`` when it finishes."""

    def __init__(self, interaction_id: str, model: str, out: str | None, chain: str) -> None:
        super().__init__(interaction_id, model, out, status="in_progress")
        self.chain = chain

    def _where(self, code: str = "") -> str:
        if self.error:
            return f": {self.error}"
        if not self.out:
            return ""
        name = f"{code}{self.out}{code}" if code else repr(self.out)
        return f"; bound to {name}" if self.done.is_set() else f"; the result will be bound to {name}"

    def __repr__(self) -> str:
        return f"background interaction {self.id} ({self.model}): {self.status}{self._where()}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        after = "" if self.done.is_set() else " — `%interact wait` waits for it."
        markdown = (
            f"Background interaction `{self.id}` ({self.model}): **{self.status}**{self._where('`')}{after}"
        )
        bundle = {"text/plain": repr(self), "text/markdown": markdown}
        if self.done.is_set() and self.result is not None:  # the answer (an agent's report) under its line
            answer, _ = self.result._repr_mimebundle_()
            bundle["text/plain"] += "\n" + answer["text/plain"]
            if "text/markdown" in answer:
                bundle["text/markdown"] += "\n\n" + answer["text/markdown"]
        return bundle


class BatchRun(RunHandle):
    """The handle a ``--batch`` cell returns at once: the run's jobs (one, or several for a big run) and
    how far they are; ``.result`` (a RowsResult, or a RowsOnDisk past ``max_frame_rows``) when they end."""

    def __init__(self, run_id: str, model: str, out: str | None, requests: int, rows: int) -> None:
        super().__init__(run_id, model, out, status="writing requests")
        self.run = run_id
        self.requests = requests
        self.rows = rows
        self.jobs: dict[str, Batch | None] = {}
        """Every job of the run by name (new ones, and ones an earlier run sent that still hold its rows)."""
        self.followed = 0

    def adopt(self, names: list[str], found: Any) -> None:
        """The run's jobs are all created (or found): the handle is named by the first."""
        for name in names:
            self.jobs.setdefault(name, None)
        self.id = names[0]
        self.requests = sum(p.requests for p in found.parts)
        self.followed = found.followed
        self.status = self.summary_state()

    def summary_state(self) -> str:
        """``running`` for one job; ``3 jobs: 1 succeeded, 2 running`` for several."""
        states = [(b.state.removeprefix("BATCH_STATE_").lower() if b is not None else "pending") for b in self.jobs.values()]
        if len(states) == 1:
            return states[0]
        counts: dict[str, int] = {}
        for state in states:
            counts[state] = counts.get(state, 0) + 1
        return f"{len(states)} jobs: " + ", ".join(f"{n} {state}" for state, n in counts.items())

    def _state(self) -> str:
        if not self.jobs:  # still writing requests or uploading, or nothing was sent
            return self.status
        jobs = [b for b in self.jobs.values() if b is not None]
        finished = sum(b.batch_stats.successful_request_count + b.batch_stats.failed_request_count for b in jobs)
        total = sum(b.batch_stats.request_count for b in jobs) or self.requests
        return f"{self.status} · {finished:,}/{total:,} requests done"

    def _line(self, code: str = "") -> str:
        where = f"; bound to {code}{self.out}{code}" if self.out and self.result is not None else ""
        error = f": {self.error}" if self.error else ""
        more = f" + {len(self.jobs) - 1} more job{'s' if len(self.jobs) > 2 else ''}" if len(self.jobs) > 1 else ""
        earlier = f", {self.followed:,} in a job sent earlier" if self.followed else ""
        head = f"{code}{self.id}{code}{more} ({self.model}, {self.requests:,} requests for {self.rows:,} rows{earlier})"
        return f"{head}: {self._state()}{where}{error}"

    def __repr__(self) -> str:
        return f"batch job {self._line()}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        after = "" if self.done.is_set() else " — `%interact wait` waits for it; the kernel stays free."
        bundle: dict[str, Any] = {
            "text/plain": repr(self),
            "text/markdown": f"Batch job {self._line('`')}{after}",
        }
        if self.result is not None:
            shown = self.result._repr_mimebundle_()
            bundle["text/plain"] += "\n" + shown["text/plain"]
            # HTML of its own: the Markdown line's backticks would show as they are inside HTML
            bundle["text/html"] = f"<p>Batch job {html.escape(self._line())}{html.escape(after)}</p>" + shown.get(
                "text/html", f"<pre>{html.escape(shown['text/plain'])}</pre>")
        return bundle
