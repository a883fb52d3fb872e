"""The live view shown while an answer arrives: widgets in a kernel, streamed text in a terminal.

The live view is a transient: when the answer is complete it goes away and the cell's result (a
plain, deterministic mimebundle) is the output that stays. See ``widgets.py`` for the kernel view.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._streaming import InteractionStream
    from ..request import CellRequest
    from ..types.events import InteractionEvent
    from ..types.interaction import Interaction


class LiveView(Protocol):
    stopped: bool
    printed: bool
    """True when the view printed the answer's text itself (a terminal), so it is not shown twice."""

    def __enter__(self) -> LiveView: ...
    def __exit__(self, *exc: object) -> None: ...
    def attach(self, stream: InteractionStream) -> None: ...
    def event(self, event: InteractionEvent) -> None: ...
    def finish(self, interaction: Interaction) -> None: ...
    def approve(self, call: Any) -> Any:
        """Whether a ``@tool(confirm=True)`` call may run: a bool, or an awaitable of one."""
        ...

    def tool_results(self, calls: list[Any]) -> None:
        """The kernel ran a step's tool calls; the next answer follows."""
        ...


class NullView:
    """No live view (``%config InteractMagics.live = False``, or nowhere to show one)."""

    stopped = False
    printed = False

    def __enter__(self) -> NullView:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def attach(self, stream: InteractionStream) -> None:
        pass

    def event(self, event: InteractionEvent) -> None:
        pass

    def finish(self, interaction: Interaction) -> None:
        pass

    def approve(self, call: Any) -> bool:
        return ask_on_stdin(call)

    def tool_results(self, calls: list[Any]) -> None:
        pass


def ask_on_stdin(call: Any) -> bool:
    """Approve a tool call at a prompt (a terminal, or a kernel's input box); no answer is a denial."""
    from .view import format_arguments

    arguments = format_arguments(call.arguments)
    try:
        answer = input(f"gemini-magics: the model wants to run {call.name}({arguments}). Allow? [y/N] ")
    except (EOFError, OSError, RuntimeError):  # no way to ask (stdin captured or closed)
        return False
    return answer.strip().lower() in ("y", "yes")


class TerminalView(NullView):
    """Terminal IPython: print text deltas as they arrive; the final result is shown after."""

    def __init__(self) -> None:
        self.printed = False

    def event(self, event: InteractionEvent) -> None:
        from ..types.content import TextContent

        delta = getattr(event, "delta", None)
        if isinstance(delta, TextContent) and delta.text:
            sys.stdout.write(delta.text)
            sys.stdout.flush()
            self.printed = True

    def tool_results(self, calls: list[Any]) -> None:
        from .result import call_line

        for call in calls:
            sys.stdout.write(f"\n[{call_line(call)} · {call.seconds:.2f} s]\n")
        sys.stdout.flush()

    def finish(self, interaction: Interaction) -> None:
        if self.printed:
            sys.stdout.write("\n\n")
            sys.stdout.flush()


def in_kernel(shell: Any) -> bool:
    return shell is not None and getattr(shell, "kernel", None) is not None


def in_terminal(shell: Any) -> bool:
    """Terminal IPython (checked by name: importing its module would load prompt_toolkit)."""
    return shell is not None and type(shell).__name__ == "TerminalInteractiveShell"


def make_live_view(
    shell: Any,
    *,
    enabled: bool,
    model: str,
    stream: bool,
    interactive: bool = False,
    structured: bool = False,
    chain: str | None = None,
    silent: bool = False,
    save_dir: str = ".",
    prompt: str = "",
) -> LiveView:
    if not enabled:
        return NullView()
    if in_kernel(shell):
        from .widgets import Saving, WidgetView

        return WidgetView(model=model, structured=structured, chain=chain, stoppable=interactive and stream,
                          followed=not silent, interactive=interactive, saving=Saving(save_dir, prompt))  # fmt: skip
    if in_terminal(shell) and stream:
        return TerminalView()
    return NullView()


class BackgroundView(Protocol):
    def status(self, status: str) -> None: ...
    def progress(self, progress: Any) -> None: ...
    def finish(self, run: Any) -> None: ...


class PrintedBackgroundView:
    """Outside a kernel: say when the background interaction ends."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def status(self, status: str) -> None:
        pass

    def progress(self, progress: Any) -> None:
        pass  # a terminal prompt is not interrupted by every step; %interact wait prints them

    def finish(self, run: Any) -> None:
        print(f"\n[gemini-magics] {run!r}", flush=True)  # its repr says how it ended, error included


def make_background_view(
    shell: Any, *, enabled: bool, run: Any, cancel: Callable[[], Any] | None, ticks: Callable[[], Any] | None = None
) -> BackgroundView:
    if enabled and in_kernel(shell):
        from .widgets import BackgroundWidget

        return BackgroundWidget(run, cancel, ticks=ticks() if ticks else None)
    return PrintedBackgroundView(run)


class PrintedProgress:
    """``%interact wait`` in a terminal: a line per step as steps complete, and status changes."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self._printed = 0
        self._status: str | None = None

    def status(self, status: str) -> None:
        pass

    def progress(self, progress: Any) -> None:
        from .view import progress_lines

        if progress is None:
            return
        if progress.status != self._status:
            self._status = progress.status
            print(f"[{self.run.id}] {progress.status} ({progress.mode})", flush=True)
        if progress.interaction is not None:
            self._print(progress_lines(progress.interaction, limit=10_000)[:-1])  # the last step may still grow

    def _print(self, lines: list[str]) -> None:
        for line in lines[self._printed :]:
            print(f"  {line}", flush=True)
        self._printed = max(self._printed, len(lines))

    def finish(self, run: Any) -> None:
        from .view import progress_lines

        progress = getattr(run, "progress", None)
        if progress is not None and progress.interaction is not None:  # the steps not printed yet, the last too
            self._print(progress_lines(progress.interaction, limit=10_000))
        # the result (or the error) follows


SHOWN_TURNS = 500
"""Chat results kept for an in-place update when a rewind drops them (the latest this many)."""


class Views:
    """Chooses the live view of a cell and the status view of a background run, for one shell."""

    def __init__(self, shell: Any, enabled: Callable[[], bool], ticks: Callable[[], Any] | None = None,
                 notices: Callable[[], list[str]] = list) -> None:  # fmt: skip
        self.shell = shell
        self.enabled = enabled
        self.ticks = ticks
        """The event loop a background run's view refreshes on (the one its follower runs on)."""
        self._shown: dict[tuple[str, int], Any] = {}
        """Chat results shown under a display id, by (chain, turn number)."""
        self.notices = notices
        """The session's pending notices (a backend started, a server replaced): said before any view, so
        they come first in every kind of cell."""

    def _notices_first(self) -> None:
        for notice in self.notices():
            print(notice, flush=True)

    def live(self, request: CellRequest, *, interactive: bool) -> LiveView:
        # not here: a live view clears the cell's outputs when it gives way to the result, notices with it;
        # the runner says them after the view, still before the result
        return make_live_view(self.shell, enabled=self.enabled(), model=request.model, stream=request.stream,
                              interactive=interactive, structured=request.structured, chain=request.chain,
                              silent=request.silent, save_dir=request.save_dir, prompt=request.prompt)  # fmt: skip

    def show(self, result: Any) -> None:
        """Show a result now (a stopped answer, which the cell does not return since it fails)."""
        self._notices_first()
        if self.shell is not None:  # this shell's own display machinery, whichever shell is current
            data, metadata = self.shell.display_formatter.format(result)
            self.shell.display_pub.publish(data=data, metadata=metadata)

    def keep_updatable(self, result: Any, key: tuple[str, int]) -> None:
        """In a kernel, a chat turn's result is shown under a display id (still the cell's value), so a later
        rewind can say in place that the turn was dropped (:meth:`dropped`)."""
        if not in_kernel(self.shell):
            return
        import secrets

        result.display_id = f"gm-turn-{key[0]}-{key[1]}-{secrets.token_hex(4)}"
        self._shown[key] = result
        while len(self._shown) > SHOWN_TURNS:  # the oldest outputs are the least likely to be on screen
            self._shown.pop(next(iter(self._shown)))

    def dropped(self, chain: str, numbers: list[int]) -> None:
        """The turns a rewind dropped: their outputs, where still shown, say so and how to bring them back."""
        from IPython.display import update_display

        for number in numbers:
            result = self._shown.pop((chain, number), None)
            if result is None or result.display_id is None:
                continue
            result.notes.append(f"dropped from chain {chain} — `%interact restore {number}` brings it back")
            data, metadata = result._repr_mimebundle_()
            update_display(data, metadata=metadata, raw=True, display_id=result.display_id)

    def background(self, run: Any, cancel: Callable[[], Any]) -> BackgroundView:
        self._notices_first()
        return make_background_view(self.shell, enabled=self.enabled(), run=run, cancel=cancel, ticks=self.ticks)

    def rows(self, *, interactive: bool) -> Any:
        """The progress of an ``--over`` run: a bar with Stop in a kernel, one line in a terminal."""
        self._notices_first()
        if self.enabled() and interactive and in_kernel(self.shell):
            from .progress import RowsProgressWidget

            return RowsProgressWidget()
        from .progress import NullRowsProgress, TerminalRowsProgress

        if in_terminal(self.shell):
            return TerminalRowsProgress()
        return NullRowsProgress()

    def waiting(self, run: Any) -> BackgroundView:
        """The progress a blocking ``%interact wait`` shows until the run ends (no Cancel: the kernel is busy)."""
        self._notices_first()
        if self.enabled() and in_kernel(self.shell):
            from .widgets import BackgroundWidget

            return BackgroundWidget(run, None, waiting=True, ticks=self.ticks() if self.ticks else None)
        return PrintedProgress(run)
