"""InteractionResult: what a cell returns and ``--out`` binds, with a deterministic mimebundle."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..chains import Plan
    from ..types.content import Content, Step
    from ..types.interaction import Interaction, Usage
    from .clips import AudioClip, VideoClip

from .view import local_note, usage_line

__all__ = ["InteractionResult", "DryRun", "TextTable", "usage_line"]


class InteractionResult:
    """The outcome of one ``%%interact`` cell.

    ``.text`` the answer's text; ``.data`` the parsed structured output (a model instance or a dict)
    when ``--schema`` was given; ``.images`` the generated images as PIL images; ``.interaction``
    the full typed Interaction (``.outputs``, ``.steps``, ``.usage``, ``.id`` are shortcuts to it).
    A turn may span several interactions (a tool loop): ``.interactions`` holds them all, in order,
    and ``.interaction`` is the last, the one that answered.
    """

    def __init__(
        self,
        interaction: Interaction | Sequence[Interaction],
        *,
        model: str,
        chain: str | None = None,
        turn: int | None = None,
        data: Any = None,
        schema_name: str | None = None,
        stored: bool = True,
    ) -> None:
        self.interactions: list[Interaction] = (
            list(interaction) if isinstance(interaction, Sequence) else [interaction]
        )
        self.interaction = self.interactions[-1]
        self.model = model
        self.chain = chain
        self.turn = turn
        self.data = data
        self.schema_name = schema_name
        self.stored = stored
        self.notes: list[str] = []
        """One-line notes for the user: a cut answer, a rewound chain, a sampled table."""
        self.printed = False
        """True when a terminal already printed the text as it streamed (then it is not repeated)."""
        self.preview_px = 1024
        """Images larger than this (long side, in pixels) are saved in the notebook as previews."""
        self.save_dir = "."
        """Where audio too long to embed is written (``InteractMagics.save_dir``)."""
        self.tool_calls: list[Any] = []
        """``--tools``: each call of each step of the loop (name, arguments, result, error, seconds)."""
        self.outcome: str | None = None
        """How the cell ended when not by the server's say (``stopped``, ``interrupted``)."""
        self.display_id: str | None = None
        """In a kernel, the display id a chat turn's result is shown under (a rewind updates it in place)."""
        self.prompt = ""
        """The cell's prompt: saved files are named after its first words."""
        self._written: dict[str, str] = {}
        """Clips too big to embed, by block key: the file each was written to (once, whatever the reprs)."""

    @property
    def _ipython_display_(self) -> Any:
        # IPython shows an object through ``_ipython_display_`` when it has one: only a result with a display id
        # does (an AttributeError says "none"), so every other result is the cell's ordinary execute_result
        if not self.display_id:
            raise AttributeError("_ipython_display_")
        return self._display_updatable

    def _display_updatable(self) -> None:
        from IPython.display import display

        data, metadata = self._repr_mimebundle_()
        display(data, metadata=metadata, raw=True, display_id=self.display_id)

    id = property(lambda self: self.interaction.id)
    status = property(lambda self: self.interaction.status)

    @property
    def text(self) -> str:
        return self.interaction.text

    @property
    def outputs(self) -> list[Content]:
        return self.interaction.outputs or []

    @property
    def steps(self) -> list[Step]:
        return self.interaction.steps or []

    @property
    def usage(self) -> Usage | None:
        return self.interaction.usage

    @property
    def _image_blocks(self) -> list[Any]:
        """Every generated image block of the turn, across its interactions."""
        return [block for interaction in self.interactions for block in interaction.images if block.data]

    @property
    def transcript(self) -> str:
        """``--transcribe``: the transcript (the answer's text)."""
        return self.text

    @property
    def speaker_turns(self) -> list[tuple[str, str]]:
        """``--transcribe --speakers``: (speaker, what they said) in order, from the answer's speech annotations."""
        from ..types import content as c

        turns = []
        for block in self.outputs:
            if isinstance(block, c.TextContent):
                for note in block.annotations or []:
                    if note.get("type") == "speech_metadata" and note.get("speaker"):
                        raw = block.text.encode()  # the API's offsets count UTF-8 bytes
                        said = raw[note.get("start_index", 0) : note.get("end_index")].decode(errors="replace")
                        turns.append((str(note["speaker"]), said))
        return turns

    @cached_property
    def audio_clips(self) -> list[AudioClip]:
        """Every spoken answer of the turn (``--audio``), as :class:`AudioClip` objects."""
        from .clips import AudioClip

        return [AudioClip(block.as_bytes(), block.mime_type or "audio/wav", local_note(block), block.sample_rate, block.channels)
                for interaction in self.interactions for block in interaction.audio if block.data]  # fmt: skip

    @cached_property
    def video(self) -> VideoClip | None:
        """The generated video (``--video``): ``.data``, ``.mime_type``, ``.duration``, ``.poster()``, ``.save()``."""
        from .clips import VideoClip

        clips = [VideoClip(b.as_bytes(), b.mime_type or "video/mp4", local_note(b))
                 for interaction in self.interactions for b in interaction.videos if b.data]  # fmt: skip
        return clips[0] if clips else None

    @property
    def audio(self) -> AudioClip | None:
        """The spoken answer (``--audio``): ``.data``, ``.mime_type``, ``.duration``, ``.save()``; None if none."""
        clips = self.audio_clips
        return clips[0] if clips else None

    @cached_property
    def images(self) -> list[Any]:
        """Every generated image of the turn, at full size, as ``PIL.Image.Image`` objects."""
        blocks = self._image_blocks
        if not blocks:
            return []
        import io

        from PIL import Image

        return [Image.open(io.BytesIO(block.as_bytes())) for block in blocks]

    def save(self, directory: str | Path = ".", stem: str | None = None) -> list[Path]:
        """Write the answer as Markdown, every image at full size, spoken answers and videos, and structured
        data as JSON.

        Returns the paths written: ``STEM.md``, ``STEM-image-N.png``..., ``STEM-audio-N.wav``, ``STEM-video.webm``,
        ``STEM.json``.
        """
        from .saving import image_extension

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        stem = stem or f"interact-{self.id or 'result'}"
        written: list[Path] = []
        for n, block in enumerate(self._image_blocks, 1):
            path = folder / f"{stem}-image-{n}.{image_extension(block.mime_type)}"
            path.write_bytes(block.as_bytes())
            written.append(path)
        links = "".join(f"\n\n![image {n}]({p.name})" for n, p in enumerate(written, 1))
        media = [(f"audio {n}", clip.save(folder / f"{stem}-audio-{n}.{clip.extension}"))
                 for n, clip in enumerate(self.audio_clips, 1)]  # fmt: skip
        if self.video is not None:
            media.append(("video", self.video.save(folder / f"{stem}-video.{self.video.extension}")))
        links += "".join(f"\n\n[{label}]({path.name})" for label, path in media)
        written += [path for _, path in media]
        markdown = folder / f"{stem}.md"
        markdown.write_text(f"{self.text}{links}\n\n---\n{self.footer()}\n", encoding="utf-8")
        written.insert(0, markdown)
        if self.data is not None:
            data = folder / f"{stem}.json"
            data.write_text(
                json.dumps(self._data_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
            written.append(data)
        return written

    @property
    def stem(self) -> str:
        """A readable file name for this answer, from the prompt's first words (``draw-a-kite-over-the-sea``)."""
        from .saving import readable_stem

        return readable_stem(self.prompt or self.text)

    def save_readable(self) -> list[Path]:
        """:meth:`save` into ``save_dir`` under :attr:`stem`, never over an earlier answer's files."""
        from .saving import free_path

        return self.save(self.save_dir, free_path(self.save_dir, self.stem, "md").stem)

    def save_image(self, n: int = 1) -> Path:
        """Image ``n`` (from 1) full size into ``save_dir``, under :attr:`stem`; returns the path written."""
        from .saving import free_path, image_extension

        blocks = self._image_blocks
        if not 1 <= n <= len(blocks):
            raise IndexError(f"no image {n}: this answer has {len(blocks)}")
        block = blocks[n - 1]
        path = free_path(self.save_dir, self.stem + (f"-{n}" if len(blocks) > 1 else ""), image_extension(block.mime_type))
        path.write_bytes(block.as_bytes())
        return path

    def __repr__(self) -> str:
        preview = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"InteractionResult(id={self.id!r}, model={self.model!r}, status={self.status!r}, text={preview!r})"

    # -- display ------------------------------------------------------------------------------------

    @property
    def served_by(self) -> str:
        """The model or engine that really answered, as the response says."""
        return getattr(self.interaction, "served_by", None) or self.interaction.model or self.model

    @property
    def answered_by(self) -> str:
        """What answered, and what was asked for when that was something else."""
        from ..answers import answered_by

        return answered_by(self.model, self.served_by)

    def footer(self) -> str:
        bits = [self.answered_by]
        ending = self.outcome or self.status
        if ending not in (None, "completed") and not any(n.startswith(str(ending)) for n in self.notes):
            bits.append(str(ending))  # (a stopped answer's note says it already: "stopped by you: …")
        usage = usage_line(self.usage)
        if usage:
            bits.append(usage)
        if self.chain:
            where = "" if self.stored else ", kept in the kernel"
            bits.append(f"chain {self.chain}" + (f" (turn {self.turn}{where})" if self.turn else ""))
        elif not self.stored:
            bits.append("not stored")
        return " · ".join(bits + self.notes)

    def _data_json(self) -> Any:
        data = self.data
        dump = getattr(data, "model_dump", None)
        if callable(dump):
            return dump(mode="json")
        if isinstance(data, list):
            return [item.model_dump(mode="json") if hasattr(item, "model_dump") else item for item in data]
        return data

    def _fits(self, data: bytes) -> bool:
        """Whether an image is small enough (``preview_px``) to embed in a saved notebook as it is."""
        import io

        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return bool(max(image.size) <= self.preview_px)

    def _embeddable(self, data: bytes, mime: str, n: int) -> str:
        """An image for the saved output: as is, or past ``preview_px`` a preview of about that size (a
        notebook with 4K images is too heavy to open or render on GitHub); the full one stays in
        ``.images`` and goes to disk with :meth:`save`."""
        import io

        from PIL import Image

        if self._fits(data):
            return f"![generated image {n}](data:{mime};base64,{base64.b64encode(data).decode()})"
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.thumbnail((self.preview_px, self.preview_px))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=85)
        preview = base64.b64encode(buffer.getvalue()).decode()
        return (f"![generated image {n} (preview of {width}×{height}: full size in .images and .save())]"
                f"(data:image/jpeg;base64,{preview})")  # fmt: skip

    def _player(self, block: Any) -> str:
        """An ``<audio>`` or ``<video>`` player for the saved output: embedded when small, else written to
        ``save_dir`` once (a notebook carrying minutes of media is too heavy to open) and played from there."""
        from .clips import EMBED_BYTES, clip_of
        from .saving import free_path, readable_stem

        clip = clip_of(block.kind, block.data, block.mime_type, block.body)
        if len(block.data) > EMBED_BYTES and block.key not in self._written:
            path = free_path(self.save_dir, readable_stem(self.text or "speech", fallback=clip.kind), clip.extension)
            path.write_bytes(block.data)
            self._written[block.key] = path.as_posix()
        return f"{clip.player_html(self._written.get(block.key))}\n\n*{block.kind.capitalize()}: {html.escape(clip.caption())}.*"

    def _markdown(self, data_json: Any) -> list[str]:
        """Every part of the turn in the order the model produced it: thoughts, tool steps and their
        results, text or structured data, images (the same blocks the live view showed)."""
        from .view import blocks_of, with_calls

        pieces: list[str] = []
        images = 0
        stand_ins: list[str] = []
        for i, interaction in enumerate(self.interactions):
            last = i == len(self.interactions) - 1
            blocks = blocks_of(interaction, structured=data_json is not None and last)
            # no timings in the saved text (it stays the same for the same answer): they are in the metadata
            blocks = with_calls(blocks, [c for c in self.tool_calls if c.step == i + 1], f"{i}.", timed=False)
            for block in blocks:
                if block.kind == "image":
                    images += 1
                    image = self._embeddable(block.data, block.mime_type or "image/png", images)
                    if pieces and pieces[-1].startswith("![generated image"):
                        pieces[-1] += " " + image  # consecutive images flow side by side: a gallery
                    else:
                        pieces.append(image)
                    if block.body and block.body not in stand_ins:
                        stand_ins.append(block.body)
                elif block.kind in ("audio", "video"):
                    pieces.append(self._player(block))
                elif block.kind == "json":
                    value = data_json if last else block.data
                    pieces.append("```json\n" + json.dumps(value, indent=2, ensure_ascii=False) + "\n```")
                elif block.kind in ("thought", "tool"):
                    pieces.append(
                        f"<details><summary>{html.escape(block.title)}</summary>\n\n{block.body}\n\n</details>\n"
                    )
                elif block.kind == "error":
                    pieces.append(f"**{block.title}**: {block.body}")
                else:
                    pieces.append(block.body)
        pieces += [f"*Image: {html.escape(note)}.*" for note in stand_ins]  # said where the picture is
        return pieces

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Plain text, and Markdown with every part (images inline, once) or structured data as JSON alone.

        Deterministic for a deterministic answer: no ids or timings in the data, only in metadata.
        """
        data_json = self._data_json() if self.data is not None else None
        markdown = self._markdown(data_json)
        thoughts = [t.text for t in self.interaction.thoughts if t.text]
        footer = self.footer()
        markdown.append(f"\n<sub>{footer}</sub>")
        answer = json.dumps(data_json, indent=2, ensure_ascii=False) if data_json is not None else self.text
        calls = "".join(f"[{call_line(c)}]\n" for c in self.tool_calls)
        plain = calls + answer
        images = self._image_blocks
        for clip in self.audio_clips:
            plain += f"\n[audio: {clip.caption()}]"
        if self.video is not None:
            plain += f"\n[video: {self.video.caption()}]"
        if images:
            drawn = {local_note(b) for b in images} - {""}
            plain += f"\n[{len(images)} image(s){''.join(f': {n}' for n in sorted(drawn))}]"
        if self.printed:  # a terminal printed the text as it streamed: only say how it ended
            plain = ""
        bundle: dict[str, Any] = {"text/plain": f"{plain}\n-- {footer}".lstrip("\n")}
        metadata_extra = self._actions(bundle, answer.strip(), structured=data_json is not None, after=len(calls),
                                       images=len(images))  # fmt: skip
        # a frontend shows one type of a bundle, the richest: JSON (a collapsible tree in JupyterLab)
        # only when the data is the whole result, else Markdown that holds every part
        json_alone = data_json is not None and not thoughts and not images and not self.tool_calls
        if json_alone:
            bundle["application/json"] = data_json if isinstance(data_json, dict) else {"items": data_json}
        else:
            # images live in the Markdown only: an image/* entry beside it stored the first one twice in the
            # .ipynb, though a frontend shows one type of a bundle (the Markdown)
            bundle["text/markdown"] = "\n\n".join(markdown)
        metadata = {"gemini_magics": {
            "model": self.served_by,
            "requested_model": self.model, "interaction_id": self.id, "chain": self.chain, "turn": self.turn,
            "status": self.status, "usage": self.usage.to_dict() if self.usage else None,
            "notes": self.notes,
            "tool_calls": [{"name": c.name, "step": c.step, "seconds": round(c.seconds, 3), "ok": c.error is None,
                            **({"decision": c.decision} if c.decision else {})} for c in self.tool_calls],
            **metadata_extra,
        }}  # fmt: skip
        return bundle, metadata

    def _actions(self, bundle: dict[str, Any], answer: str, *, structured: bool, after: int, images: int) -> dict[str, Any]:
        """In a kernel, the entry the JupyterLab extension draws Copy and Save from (see ``render.actions``);
        returns the metadata that goes with it (the answer's token). ``answer``: its text or data as ``text/plain``
        holds it, from ``after`` on."""
        from . import actions

        if not actions.serving() or self.printed:
            return {}
        bundle[actions.MIME_TYPE] = actions.entry(
            bundle["text/plain"], copy_text=answer, after=after, copy_label="Copy JSON" if structured else "Copy text",
            stem=self.stem, images=images,
        )  # fmt: skip
        return {"result": actions.token(self)}


def call_line(call: Any) -> str:
    """One tool call as a line: ``get_weather(city='Paris') → {...}``."""
    from .view import format_arguments

    arguments = format_arguments(call.arguments)
    outcome = (
        f"error: {call.error}"
        if call.error is not None
        else json.dumps(call.result, ensure_ascii=False, default=str)
    )
    if len(outcome) > 120:
        outcome = outcome[:119] + "…"
    return f"{call.name}({arguments}) → {outcome}"


class DryRun:
    """What ``--dry-run`` shows: the request body with base64 data summarised, and the chain plan."""

    def __init__(self, body: dict[str, Any], plan: Plan, notes: Sequence[str] = ()) -> None:
        self.request = body
        self.plan = plan
        self.notes = list(notes)

    def summary(self) -> dict[str, Any]:
        from ..inputs import PendingInline, PendingUpload, summarise_part, summarise_pending

        def walk(value: Any) -> Any:
            if isinstance(value, dict):
                return summarise_part({k: walk(v) for k, v in value.items()})
            if isinstance(value, list):
                return [walk(v) for v in value]
            if isinstance(value, PendingInline | PendingUpload):
                return summarise_pending(value)
            return value

        summary: dict[str, Any] = walk(self.request)
        return summary

    def __repr__(self) -> str:
        notes = "".join(f"\n-- {note}" for note in self.notes)
        return (
            "POST /interactions (dry run, nothing sent)\n"
            + json.dumps(self.summary(), indent=2, ensure_ascii=False)
            + notes
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/plain": repr(self), "application/json": self.summary()}


class RowsResult:
    """What an ``--over`` cell shows: one summary line and the DataFrame's head. ``-o`` binds ``.frame``."""

    def __init__(self, frame: Any, summary: str, outcomes: list[Any], stats: Any, check: Any = None) -> None:
        self.frame = frame
        self.summary = summary
        self.check = check
        """``--check``'s report (``run.check.CheckReport``): accuracy, confusion tables, disagreeing rows."""
        self.outcomes = outcomes
        """Each row's outcome (``run.rows.RowOutcome``), in the frame's order."""
        self.stats = stats
        """The run's counts and timings (``run.rows.RowStats``)."""

    def _checks(self) -> list[tuple[str, Any]]:
        """(what was scored, report): one report, or one per model with ``-m a,b``."""
        if self.check is None:
            return []
        if isinstance(self.check, dict):
            return [(f"{model}: ", report) for model, report in self.check.items()]
        return [("", self.check)]

    def __repr__(self) -> str:
        check = "".join(f"\n{who}{report.line()}" for who, report in self._checks())
        return f"{self.summary}{check}\n{self.frame.head(10).to_string()}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        head = self.frame.head(10).to_html(na_rep="")
        check = "".join(f"<p class='gm-rows-check'>{html.escape(who + report.line())}</p>"
                        + "".join(table.to_html() for table in report.confusion.values()) for who, report in self._checks())  # fmt: skip
        return {"text/plain": repr(self),
                "text/html": f"<p class='gm-rows-summary'>{html.escape(self.summary)}</p>{check}{head}"}  # fmt: skip


class RowsOnDisk:
    """``-o`` for an ``--over`` result with more rows than ``InteractMagics.max_frame_rows``: where the rows
    are, and reading them on request (``.load()``, ``.head(n)``), instead of a DataFrame no kernel wants."""

    def __init__(self, path: Any, rows: int, summary: str, stats: Any = None) -> None:
        self.path = path
        self.rows = rows
        self.summary = summary
        self.stats = stats

    def __len__(self) -> int:
        return self.rows

    def load(self, columns: list[str] | None = None) -> Any:
        """The rows as a DataFrame (``columns``: only these), read from the file."""
        import pandas as pd

        kind = str(self.path).rsplit(".", 1)[-1].lower()
        if kind == "parquet":
            return pd.read_parquet(self.path, columns=columns)
        frame = pd.read_json(self.path, lines=True, dtype=False) if kind in ("jsonl", "ndjson") else pd.read_csv(self.path)
        return frame[columns] if columns else frame

    def head(self, n: int = 10) -> Any:
        """The first ``n`` rows, read without loading the rest."""
        import pandas as pd

        if str(self.path).lower().endswith(".parquet"):
            import pyarrow.parquet as pq  # type: ignore[import-untyped]

            first = next(pq.ParquetFile(self.path).iter_batches(batch_size=n), None)
            return first.to_pandas() if first is not None else pd.DataFrame()
        if str(self.path).lower().endswith(".csv"):
            return pd.read_csv(self.path, nrows=n)
        return pd.read_json(self.path, lines=True, nrows=n, dtype=False)

    def __repr__(self) -> str:
        return (f"{self.summary}\n{self.rows:,} rows in {self.path} (more than InteractMagics.max_frame_rows): "
                ".load() reads them, .head(n) the first n")  # fmt: skip

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"text/plain": repr(self), "text/html": f"<p class='gm-rows-summary'>{html.escape(self.summary)}</p><p>"
                f"{self.rows:,} rows in <code>{html.escape(str(self.path))}</code> (more than <code>InteractMagics.max_frame_rows"
                "</code>): <code>.load()</code> reads them, <code>.head(n)</code> the first n</p>"}  # fmt: skip


class RowsDryRun(DryRun):
    """``--over … --dry-run``: the first row's request, with how many requests and tokens in its notes."""

    def __init__(self, body: dict[str, Any], plan: Plan, notes: Sequence[str], *, requests: int,
                 estimated_tokens: int, concurrency: int) -> None:  # fmt: skip
        super().__init__(body, plan, notes)
        self.requests = requests
        self.estimated_tokens = estimated_tokens
        self.concurrency = concurrency


class TextTable:
    """A small table shown as Markdown in notebooks and aligned text in terminals."""

    def __init__(
        self, headers: list[str], rows: list[list[Any]], title: str | None = None, empty: str = "(none)"
    ) -> None:
        self.headers = headers
        self.rows = [[("" if v is None else str(v)) for v in row] for row in rows]
        self.title = title
        self.empty = empty

    def __repr__(self) -> str:
        return self._plain()

    def _plain(self) -> str:
        lines = [self.title] if self.title else []
        if not self.rows:
            return "\n".join(lines + [self.empty])
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) for i, h in enumerate(self.headers)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(self.headers, widths, strict=False)).rstrip())
        lines.extend(
            "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip() for row in self.rows
        )
        return "\n".join(lines)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        md = [f"**{self.title}**\n"] if self.title else []
        if not self.rows:
            md.append(self.empty)
        else:
            md.append("| " + " | ".join(self.headers) + " |")
            md.append("|" + "---|" * len(self.headers))
            md.extend(
                "| " + " | ".join(v.replace("|", "\\|").replace("\n", " ") for v in row) + " |"
                for row in self.rows
            )
        return {"text/plain": self._plain(), "text/markdown": "\n".join(md)}
