"""Progress of an ``--over`` run: a bar with figures and Stop in notebooks, one line in terminals."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any

__all__ = ["NullRowsProgress", "TerminalRowsProgress", "progress_text"]


def progress_text(stats: Any, *, final: bool = False) -> str:
    """``12/40 rows · 1 failed · 3.1 rows/s · ETA 9 s · 1,234 tokens · concurrency 8``; ``final``: the line
    that stays once the run ended (no ETA: a stopped run's would stay frozen, saved in the notebook too)."""
    finished = stats.done + stats.failed + stats.skipped
    bits = [f"{finished}/{stats.total} rows"]
    if stats.failed:
        bits.append(f"{stats.failed} failed")
    if stats.cached:
        bits.append(f"{stats.cached} from the cache")
    rate = stats.rate()
    if rate:
        bits.append(f"{rate:.1f} rows/s")
    eta = stats.eta()
    if eta is not None and finished < stats.total and not final:
        bits.append(f"ETA {eta:.0f} s")
    bits.append(f"{stats.tokens:,} tokens")
    if stats.concurrency is not None:
        bits.append(f"concurrency {stats.concurrency}")
    return " · ".join(bits)


class NullRowsProgress:
    """No progress shown (scripts, tests, ``live`` off); Stop is never pressed."""

    stopped = False

    def start(self, stats: Any) -> None:
        pass

    def update(self, stats: Any) -> None:
        pass

    def finish(self, stats: Any) -> None:
        pass


class TerminalRowsProgress(NullRowsProgress):
    """One line, rewritten in place at most a few times a second (Ctrl-C stops the run)."""

    def __init__(self) -> None:
        self._shown = 0.0

    def update(self, stats: Any) -> None:
        now = time.monotonic()
        if now - self._shown >= 0.2:
            self._shown = now
            sys.stdout.write("\r" + progress_text(stats) + "\x1b[K")
            sys.stdout.flush()

    def finish(self, stats: Any) -> None:
        sys.stdout.write("\r\x1b[K")
        sys.stdout.flush()


class RowsProgressWidget:
    """A progress bar, the run's figures and Stop; at the end the display becomes the figures' last line."""

    def __init__(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        from .widgets import row_that_wraps

        self.stopped = False
        self._stats: Any = None
        self._bar = widgets.IntProgress(value=0, min=0, max=1, bar_style="info")
        self._bar.add_class("gm-rows-bar")
        self._label = widgets.HTML("starting…")
        self._label.add_class("gm-rows-status")
        self._button = widgets.Button(description="Stop", icon="stop", button_style="warning",
                                      layout=widgets.Layout(width="80px", flex="0 0 auto"))  # fmt: skip
        self._button.add_class("gm-stop")
        self._button.on_click(self._on_stop)
        self.root = widgets.HBox([self._bar, self._label, self._button], layout=row_that_wraps())
        self.root.add_class("gm-rows")
        self._done = threading.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._handle = display(self.root, display_id=True)

    def _on_stop(self, _button: Any) -> None:
        self.stopped = True
        self._button.disabled = True
        self._label.value = "stopping: in-flight rows are cancelled, finished ones kept…"

    def start(self, stats: Any) -> None:
        self._stats = stats
        self._bar.max = max(1, stats.total)
        self._refresh()
        try:  # the run's own loop (the kernel's, in a notebook) refreshes the widgets: no other thread sets them
            self._ticker = asyncio.get_running_loop().create_task(self._tick())
        except RuntimeError:  # started outside a loop: nothing refreshes it but update() and finish()
            self._ticker = None

    def update(self, stats: Any) -> None:
        self._stats = stats

    async def _tick(self) -> None:
        while not self._done.is_set():
            await asyncio.sleep(0.25)
            self._refresh()

    def _refresh(self) -> None:
        stats = self._stats
        if stats is None:
            return
        self._bar.value = stats.done + stats.failed + stats.skipped
        if not self.stopped:
            self._label.value = progress_text(stats)
        if stats.failed:
            self._bar.bar_style = "warning"

    def finish(self, stats: Any) -> None:
        self._done.set()
        if self._ticker is not None:
            self._ticker.cancel()
        self._stats = stats
        self._refresh()
        line = progress_text(stats, final=True)
        self._handle.update({"text/plain": line, "text/markdown": f"<sub>{line}</sub>"}, raw=True)
        for widget in (self._bar, self._label, self._button, self.root):
            widget.close()
