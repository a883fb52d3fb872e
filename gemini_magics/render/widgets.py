"""The live view in a kernel: stock ipywidgets, updated in place at a bounded rate.

Why it degrades well without a widget manager (nbclient, nbval, GitHub): the view is displayed as a
bundle holding only the widget-view MIME type, no ``text/plain``, and when the answer is complete
the cell's outputs are cleared as the result arrives (``clear_output(wait=True)``) and the widgets
are closed. The saved notebook therefore holds only the cell's result (a plain Markdown/PNG/JSON
bundle): no empty leftover, no duplicate answer, nothing run-dependent to compare.

Stop needs the kernel to handle a button click while the cell runs: in a kernel the magic runs the
cell as a coroutine (see ``InteractMagics.await_interact_cells``), and ipykernel dispatches widget messages
while a cell awaits. Where the cell blocks instead, no Stop button is shown (interrupt still works).
"""

from __future__ import annotations

import asyncio
import html
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets
from IPython.display import clear_output, display

from .view import Block, ViewModel, format_arguments

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MIN_INTERVAL = 0.05
"""Seconds between two renders: at most 20 updates per second, however fast deltas come."""

class Ticker:
    """A refresh every ``every`` seconds, run by an event loop: the view's widgets change on that loop's
    thread (the one its events arrive on), never from a thread of the ticker's own."""

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float, tick: Callable[[], None]) -> None:
        self._loop = loop
        self._every = every
        self._tick = tick
        self._stopped = threading.Event()

    def start(self) -> Ticker:
        self._loop.call_soon_threadsafe(self._loop.call_later, self._every, self._run)
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _run(self) -> None:
        if self._stopped.is_set():
            return
        self._tick()
        self._loop.call_later(self._every, self._run)


# JupyterLab's own theme variables (light and dark alike; the fallbacks are for other frontends), never fixed
# greys: #5f6368 on JupyterLab Dark was 3.1:1, under the 4.5:1 WCAG AA asks of text
CSS = """
<style>
.gm-live { border-left: 3px solid var(--jp-brand-color1, #1976d2); padding: 2px 0 2px 10px; margin: 4px 0; }
.gm-header { color: var(--jp-ui-font-color2, #616161); font-size: 12px; }
.gm-footer { color: var(--jp-ui-font-color2, #616161); font-size: 11px;
             border-top: 1px solid var(--jp-border-color2, #e0e0e0); padding-top: 2px; }
.gm-error { color: var(--jp-error-color1, #b3261e); background: var(--jp-rendermime-error-background, #fce8e6);
            border-radius: 4px; padding: 6px 10px; }
.gm-caption { color: var(--jp-ui-font-color2, #616161); font-size: 11px; }
.gm-table table { border-collapse: collapse; font-size: 12px; }
.gm-table th, .gm-table td { border: 1px solid var(--jp-border-color2, #e0e0e0); padding: 2px 6px; text-align: left; }
</style>
"""


def row_that_wraps() -> widgets.Layout:
    """A row that wraps instead of squeezing its buttons (a narrow window: 600 px). (ipywidgets' Layout has
    no ``gap``: the children's own margins space them.)"""
    return widgets.Layout(flex_flow="row wrap", align_items="center")


def _fixed(width: str) -> widgets.Layout:
    """A button that keeps its width in a narrow row (it wraps to the next line instead of shrinking)."""
    return widgets.Layout(width=width, flex="0 0 auto")


def _markdown_output(markdown: str, classes: str = "gm-markdown") -> widgets.Output:
    out = widgets.Output()
    out.add_class(classes)
    _set_markdown(out, markdown)
    return out


def _set_markdown(out: widgets.Output, markdown: str) -> None:
    out.outputs = (
        {
            "output_type": "display_data",
            "data": {"text/markdown": markdown, "text/plain": markdown},
            "metadata": {},
        },
    )


def _set_json(out: widgets.Output, value: Any) -> None:
    data = value if isinstance(value, dict) else {"items": value}
    out.outputs = (
        {
            "output_type": "display_data",
            "data": {"application/json": data, "text/plain": repr(value)},
            "metadata": {},
        },
    )


def records_table(value: Any, limit: int = 50) -> str | None:
    """An HTML table (escaped) for a list of flat records, else None."""
    if not isinstance(value, list) or not value or not all(isinstance(r, dict) for r in value):
        return None
    columns: list[str] = []
    for record in value:
        columns.extend(k for k in record if k not in columns)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in value[:limit]
    )
    more = f"<div class='gm-caption'>{len(value) - limit} more rows</div>" if len(value) > limit else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}"


@dataclass(frozen=True)
class Saving:
    folder: str = "."
    prompt: str = ""


class _BlockWidget:
    """One block's widgets; ``update`` changes only what differs."""

    def __init__(self, block: Block, saving: Saving) -> None:
        self.block = block
        self.saving = saving
        self.widget = self._build(block)

    def _build(self, block: Block) -> widgets.Widget:
        if block.kind == "markdown":
            self._out = _markdown_output(block.body)
            return self._out
        if block.kind in ("thought", "tool"):
            self._out = _markdown_output(block.body)
            accordion = widgets.Accordion(children=[self._out], selected_index=None)
            accordion.set_title(0, block.title)
            accordion.add_class(f"gm-{block.kind}")
            self._accordion = accordion
            if block.kind == "thought":
                return accordion
            self.decision = widgets.VBox([])  # a confirm=True call's Approve / Deny, inside its own card
            card = widgets.VBox([accordion, self.decision])
            card.add_class("gm-tool-card")
            card.add_class(f"gm-tool-{block.state or 'ok'}")
            self._card = card
            return card
        if block.kind in ("image", "audio"):
            return self._media(block)
        if block.kind == "json":
            self._out = widgets.Output()
            self._out.add_class("gm-json")
            _set_json(self._out, block.data)
            self._table = widgets.HTML(records_table(block.data) or "")
            self._table.add_class("gm-table")
            return widgets.VBox([self._out, self._table])
        if block.kind == "error":
            card = widgets.HTML(
                f"<div class='gm-error'><b>{html.escape(block.title)}</b>: {html.escape(block.body)}</div>"
            )
            card.add_class("gm-error-card")
            return card
        return widgets.HTML(
            f"<span class='gm-caption'>{html.escape(block.title)} {html.escape(block.body)}</span>"
        )

    def _media(self, block: Block) -> widgets.Widget:
        """An image or a spoken answer, its Save button first: a caption that grows ("saved to …") never moves it."""
        save = widgets.Button(description="Save", icon="download", layout=_fixed("90px"))
        save.add_class("gm-save")
        save.on_click(self._save)
        if block.kind == "image":
            self._image = shown = widgets.Image(value=block.data, format=(block.mime_type or "image/png").split("/")[-1])
            self._image.add_class("gm-image")
        else:
            shown = widgets.Audio(value=block.data, format=self._extension(block), autoplay=False, controls=True)
            shown.add_class("gm-audio")
        self._caption = widgets.HTML(self._caption_text(block))
        self._caption.add_class("gm-caption")
        return widgets.VBox([shown, widgets.HBox([save, self._caption], layout=row_that_wraps())],
                            layout=widgets.Layout(align_items="flex-start"))  # fmt: skip

    @staticmethod
    def _extension(block: Block) -> str:
        from .clips import clip_of
        from .saving import image_extension

        if block.kind == "image":
            return image_extension(block.mime_type)

        return clip_of(block.kind, block.data, block.mime_type).extension

    @staticmethod
    def _caption_text(block: Block) -> str:
        if block.kind != "image":
            from .clips import clip_of

            return html.escape(clip_of(block.kind, block.data, block.mime_type, block.body).caption())
        size = len(block.data or b"")
        dims = ""
        try:
            import io

            from PIL import Image

            with Image.open(io.BytesIO(block.data)) as image:
                dims = f"{image.width}×{image.height}, "
        except Exception:  # a partial image while streaming: show its size only
            dims = ""
        stand_in = f" · {html.escape(block.body)}" if block.body else ""
        return f"{html.escape(block.mime_type or 'image')} · {dims}{size / 1024:.1f} KB{stand_in}"

    def _save(self, _button: Any) -> None:
        """An image or a spoken answer to ``save_dir``, under a name taken from the prompt."""
        from .saving import free_path, readable_stem

        block = self.block
        fallback = "gemini" if block.kind == "image" else "speech"
        try:
            path = free_path(self.saving.folder, readable_stem(self.saving.prompt, fallback=fallback), self._extension(block))
            path.write_bytes(block.data)
        except OSError as exc:  # a folder that cannot be made or written: said on the card, not raised
            self._caption.value = f"{self._caption_text(block)} · not saved: {html.escape(str(exc))}"
            return
        self._caption.value = f"{self._caption_text(block)} · saved to {html.escape(str(path))}"

    def update(self, block: Block) -> None:
        if block == self.block:
            return
        self.block = block
        if block.kind in ("markdown", "thought", "tool"):
            _set_markdown(self._out, block.body)
            if block.kind != "markdown":
                self._accordion.set_title(0, block.title)
            if block.kind == "tool":
                for state in ("called", "ok", "error", "declined"):
                    self._card.remove_class(f"gm-tool-{state}")
                self._card.add_class(f"gm-tool-{block.state or 'ok'}")
                if block.state != "called":  # the result is in: the title says how it was decided
                    self.decision.children = ()
        elif block.kind == "image":
            self._image.value = block.data
            self._caption.value = self._caption_text(block)
        elif block.kind == "json":
            _set_json(self._out, block.data)
            self._table.value = records_table(block.data) or ""


class WidgetView:
    """The live view of one streamed (or awaited) answer."""

    def __init__(
        self,
        *,
        model: str,
        structured: bool = False,
        chain: str | None = None,
        stoppable: bool = True,
        followed: bool = True,
        interactive: bool = True,
        saving: Saving | None = None,
    ) -> None:
        self.model = model
        self.saving = saving or Saving()
        """Where the Save buttons write, and the prompt their file names come from."""
        self.printed = False
        self._followed = followed
        self._interactive = interactive
        """Whether the kernel can act on a click while the cell runs (it is awaited, not blocked)."""
        self.view = ViewModel(model=model, structured=structured, chain=chain)
        self.stopped = False
        self.render_count = 0
        self._started = time.monotonic()
        self._last_render = 0.0
        self._cancel: Callable[[], None] | None = None
        self._blocks: dict[str, _BlockWidget] = {}
        self._galleries: dict[tuple[int, ...], widgets.HBox] = {}
        self._header = widgets.HTML(self._header_html())
        self._header.add_class("gm-header")
        self._body = widgets.VBox([])
        self._stop = widgets.Button(
            description="Stop", icon="stop", button_style="warning", layout=_fixed("80px")
        )
        self._stop.add_class("gm-stop")
        self._stop.on_click(self._on_stop)
        if not stoppable:
            self._stop.layout.display = "none"
        self._footer = widgets.HTML("")
        self._footer.add_class("gm-footer")
        self._approvals = widgets.VBox([])
        self._pending: list[Callable[[], None]] = []
        self.root = widgets.VBox(
            [
                widgets.HTML(CSS),
                widgets.HBox([self._header, self._stop], layout=row_that_wraps()),
                self._body,
                self._approvals,
                self._footer,
            ]
        )
        self.root.add_class("gm-live")
        self._handle: Any = None
        self._ticker: Ticker | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    def __enter__(self) -> WidgetView:
        bundle = {WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": self.root.model_id}}
        self._handle = display(bundle, raw=True, display_id=True)
        try:  # the cell's own loop: the timer changes the header on the thread the events come on
            self._ticker = Ticker(asyncio.get_running_loop(), 0.2, self._tick).start()
        except RuntimeError:  # entered outside a loop: no elapsed timer before the first token
            self._ticker = None
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.layout.display = "none"
        if self._ticker is not None:
            self._ticker.stop()
        if self._handle is not None:
            # the output that follows (the result, a kept partial answer, an error) replaces the view;
            # a silenced cell has none, so its view goes at once
            clear_output(wait=self._followed)
        self._close()

    def _close(self) -> None:
        for child in self._all_widgets(self.root):
            child.close()

    def _all_widgets(self, widget: widgets.Widget) -> list[widgets.Widget]:
        found = [widget]
        for child in getattr(widget, "children", ()):
            found.extend(self._all_widgets(child))
        return found

    def _tick(self) -> None:
        if not self.view.has_content:  # the elapsed timer before the first token
            self._header.value = self._header_html()

    # -- the stream ---------------------------------------------------------------------------------

    def attach(self, stream: Any) -> None:
        """Follow a stream: Stop aborts it, and blocks render from its own snapshot."""
        self._cancel = stream.abort
        self.view.follow(lambda: stream.interaction)

    def _on_stop(self, _button: Any) -> None:
        for deny in self._pending:  # Stop answers any open question: no
            deny()
        self.stopped = True
        self._stop.disabled = True
        self._stop.description = "Stopping"
        if self._cancel is not None:
            self._cancel()

    def event(self, event: Any) -> None:
        self.view.feed(event)
        now = time.monotonic()
        if now - self._last_render >= MIN_INTERVAL:
            self._render()

    def finish(self, interaction: Any) -> None:
        self.view.finish(interaction)
        self._render()

    def tool_results(self, calls: list[Any]) -> None:
        self.view.next_round(calls)
        self._render()

    def approve(self, call: Any) -> Any:
        """An Approve / Deny card; the returned future resolves when one is clicked (or Stop is)."""
        import asyncio

        if not self._interactive:  # a blocked kernel cannot receive the click
            return "approval needs the cell to run on its own: a magic stacked above %%interact blocks the buttons"

        loop = asyncio.get_running_loop()
        decided: asyncio.Future[bool | str] = loop.create_future()
        arguments = format_arguments(call.arguments)
        question = widgets.HTML(f"<b>Run {html.escape(call.name)}({html.escape(arguments)})?</b>")
        buttons = [
            widgets.Button(description=d, button_style=s, layout=_fixed("90px"))
            for d, s in (("Approve", "success"), ("Deny", "danger"))
        ]
        row = widgets.HBox([question, *buttons], layout=row_that_wraps())
        row.add_class("gm-approval")

        def decide(answer: bool | str) -> None:
            if decided.done() or buttons[0].disabled:
                return
            for button in buttons:
                button.disabled = True
            said = "approved by you — running" if answer is True else (answer or "denied by you")
            question.value = f"{question.value} — {html.escape(said)}"
            loop.call_soon_threadsafe(_settle, decided, answer)

        buttons[0].on_click(lambda _: decide(True))
        buttons[1].on_click(lambda _: decide(False))
        self._pending.append(lambda: decide("stopped before approval"))  # Stop: not the user's denial
        card = next((b for b in self._blocks.values() if call.call_id and b.block.call_id == call.call_id), None)
        if card is not None:
            card.decision.children = (row,)
        else:  # no card for the call (yet): below the answer
            self._approvals.children = (*self._approvals.children, row)
        return decided

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _header_html(self) -> str:
        status = self.view.status_text(self._elapsed())
        return f"<b>{html.escape(self.view.answering())}</b> <span>{html.escape(status)}</span>"

    def _render(self) -> None:
        self._last_render = time.monotonic()
        self.render_count += 1
        blocks = self.view.blocks()
        with self.root.hold_sync():
            children: list[widgets.Widget] = []
            run: list[widgets.Widget] = []  # consecutive images, shown side by side as a gallery
            for block in blocks:
                existing = self._blocks.get(block.key)
                if existing is None or existing.block.kind != block.kind:
                    existing = self._blocks[block.key] = _BlockWidget(block, self.saving)
                else:
                    existing.update(block)
                if block.kind == "image":
                    run.append(existing.widget)
                    continue
                children += self._gallery(run)
                run = []
                children.append(existing.widget)
            children += self._gallery(run)
            if tuple(children) != tuple(self._body.children):
                self._body.children = children
            self._header.value = self._header_html()
            self._footer.value = html.escape(self.view.footer(self._elapsed()))

    def _gallery(self, images: list[widgets.Widget]) -> list[widgets.Widget]:
        if len(images) < 2:
            return images
        key = tuple(id(image) for image in images)
        gallery = self._galleries.get(key)
        if gallery is None:
            gallery = self._galleries[key] = widgets.HBox(
                images, layout=widgets.Layout(flex_flow="row wrap")
            )
            gallery.add_class("gm-gallery")
        return [gallery]


def _settle(future: Any, value: Any) -> None:
    if not future.done():
        future.set_result(value)


class BackgroundWidget:
    """Status, elapsed time, the steps so far and Cancel for a background run, refreshed twice a second
    on ``ticks``, the event loop the run's follower runs on (the caller's to give): never from a thread of its own, and never
    after ``finish`` has written the final display.

    ``cancel=None`` (``%interact wait``, which blocks the kernel so no click could arrive) shows no button.
    """

    def __init__(self, run: Any, cancel: Callable[[], Any] | None, *, waiting: bool = False,
                 ticks: asyncio.AbstractEventLoop | None = None) -> None:  # fmt: skip
        self.run = run
        self._waiting = waiting
        self._cancel = cancel
        self._label = widgets.HTML(self._text())
        self._label.add_class("gm-background-status")
        self._steps = widgets.HTML("")
        self._steps.add_class("gm-progress")
        row: list[widgets.Widget] = [self._label]
        self._button: widgets.Button | None = None
        if cancel is not None:
            self._button = widgets.Button(description="Cancel", icon="stop", button_style="warning",
                                          layout=_fixed("90px"))  # fmt: skip
            self._button.on_click(self._on_cancel)
            self._button.add_class("gm-cancel")
            row.append(self._button)
        self.root = widgets.VBox([widgets.HBox(row, layout=row_that_wraps()), self._steps])
        self.root.add_class("gm-background")
        self._lock = threading.Lock()
        self._finished = False
        self._shown_status = run.status
        # one display holds the live widget and the run's own text, kept up to date; at the end only the
        # text stays, so a saved notebook shows the run's final state, not "in_progress" or a dead widget
        self._handle = display(self._bundle(), raw=True, display_id=True)
        run.displayed = True
        self._ticker = Ticker(ticks, 0.5, self._refresh).start() if ticks is not None else None

    def _bundle(self) -> dict[str, Any]:
        bundle: dict[str, Any] = dict(self.run._repr_mimebundle_())
        bundle[WIDGET_VIEW] = {"version_major": 2, "version_minor": 0, "model_id": self.root.model_id}
        return bundle

    def _text(self) -> str:
        run = self.run
        elapsed = time.monotonic() - run.started
        target = f" → <code>{html.escape(run.out)}</code>" if run.out else ""
        mode = getattr(run.progress, "mode", None)
        how = f" · {html.escape(mode)}" if mode in ("streaming", "polling") else ""
        return (f"<b>{html.escape(run.model)}</b> · background · <span class='gm-status'>{html.escape(run.status)}</span>"
                f" · <span class='gm-elapsed'>{elapsed:.0f} s</span>{how} · {html.escape(run.id)}{target}")  # fmt: skip

    def _steps_html(self) -> str:
        from .view import progress_lines

        interaction = getattr(self.run.progress, "interaction", None)
        if interaction is None:
            return ""
        items = "".join(f"<li>{html.escape(line)}</li>" for line in progress_lines(interaction))
        return f"<ul class='gm-steps'>{items}</ul>" if items else ""

    def _refresh(self) -> None:
        with self._lock:
            if not self._finished:
                self._show_progress()

    def _show_progress(self) -> None:
        self._label.value = self._text()
        steps = self._steps_html()
        if steps != self._steps.value:
            self._steps.value = steps
        if self.run.status != self._shown_status:  # the saved text follows status changes, not every event
            self._shown_status = self.run.status
            self._handle.update(self._bundle(), raw=True)

    def _on_cancel(self, _button: Any) -> None:
        assert self._button is not None and self._cancel is not None
        self._button.disabled = True
        try:
            self._cancel()
        except Exception as exc:  # the interaction may have finished meanwhile
            self._label.value = f"{self._text()} · cancel failed: {html.escape(str(exc))}"

    def status(self, status: str) -> None:
        self.run.status = status
        self._refresh()

    def progress(self, progress: Any) -> None:
        """Nothing to do: the ticker reads ``run.progress`` (kept by the run's follower) twice a second,
        whatever the event rate."""

    def finish(self, run: Any) -> None:
        """The run ended: its display becomes the plain final line and answer (what a saved notebook
        shows, with or without a kernel), and the widgets go."""
        if self._ticker is not None:
            self._ticker.stop()
        with self._lock:
            self._finished = True
            self._show_final(run)

    def _show_final(self, run: Any) -> None:
        if self._waiting:  # the wait cell returns the result itself: this display only says how long it took
            took = time.monotonic() - run.started
            line = f"waited {took:.0f} s for {run.id} ({run.status})"
            self._handle.update(
                {"text/plain": line, "text/markdown": f"<sub>{html.escape(line)}</sub>"}, raw=True
            )
        else:
            self._handle.update(kept_steps(run), raw=True)
        for widget in (self._label, self._steps, *([self._button] if self._button else []), self.root):
            widget.close()


def kept_steps(run: Any) -> dict[str, Any]:
    """A finished run's own bundle; one that ended without a result (cancelled, failed) keeps the steps it
    had streamed, so a Cancel never wipes what the agent had already done."""
    from .view import progress_lines

    bundle: dict[str, Any] = dict(run._repr_mimebundle_())
    interaction = getattr(run.progress, "interaction", None)
    lines = progress_lines(interaction, limit=1_000) if run.result is None and interaction is not None else []
    if lines:
        said = f"Steps before it ended {run.status}:"
        bundle["text/plain"] += "\n" + said + "".join(f"\n  {line}" for line in lines)
        bundle["text/markdown"] += f"\n\n{said}\n\n" + "\n".join(f"- {html.escape(line)}" for line in lines)
    return bundle
