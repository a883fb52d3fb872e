"""Prompt templating: ``{{name}}`` references in a cell become typed content parts at their place.

The cell text is never passed through ``str.format``: only ``{{ identifier(.attr | [int] | ["key"])* }}``
is a reference, so code and JSON braces pass untouched and ``\\{{`` stays a literal ``{{``. Each
referenced object becomes a part: text for strings and numbers, JSON for dicts and lists, a compact
table for DataFrames, PNG images for PIL images / numpy arrays / matplotlib figures, and
image/audio/video/document parts for paths and bytes. No HTTP here: big files are left for the
caller to upload (:class:`PendingUpload`).
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._media import api_mime_type, guess_mime_type, part_kind
from .errors import TemplateError

REFERENCE = re.compile(
    r"(?P<escape>\\)?\{\{\s*(?P<expr>[A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*|\s*\[\s*(?:-?\d+|\"[^\"\n]*\"|'[^'\n]*')\s*\])*)\s*\}\}"
)
_STEP = re.compile(r"\.\s*(?P<attr>[A-Za-z_]\w*)|\[\s*(?P<index>-?\d+|\"[^\"\n]*\"|'[^'\n]*')\s*\]")
INLINE_LIMIT = 15 * 1024 * 1024
ROW_INLINE_LIMIT = 2 * 1024 * 1024
"""In ``--over`` rows (``Options.lazy_files``) bigger files go through the Files API: once per kernel and
content hash, read in chunks, so many rows of big files never sit in the kernel's memory as base64."""

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
    (b"%PDF", "application/pdf"), (b"ID3", "audio/mp3"), (b"OggS", "audio/ogg"), (b"fLaC", "audio/flac"),
)  # fmt: skip


@dataclass
class PendingUpload:
    """A file too big to send inline: the caller uploads it and replaces this with a file part."""

    path: Path
    mime_type: str
    label: str


@dataclass
class PendingInline:
    """A file sent inline, read only when its request is sent: ``--over`` rows hold their paths, not
    their bytes, so a thousand rows of 7 MB files never sit in the kernel at once."""

    path: Path
    mime_type: str
    label: str

    def part(self) -> dict[str, Any]:
        return _bytes_part(self.path.read_bytes(), self.mime_type)


@dataclass
class Options:
    table_budget: int = 4000
    """Characters a DataFrame/Series summary may take; the cap is said in the text."""
    max_columns: int = 20
    max_rows: int = 20
    """Rows of a head/tail sample at most, however much budget is left."""
    lazy_files: bool = False
    """Files become :class:`PendingInline` (read when sent) instead of inline parts (read now)."""


def find_references(text: str) -> list[str]:
    return [m.group("expr") for m in REFERENCE.finditer(text) if not m.group("escape")]


def resolve(expr: str, namespace: Mapping[str, Any]) -> Any:
    head = re.match(r"[A-Za-z_]\w*", expr)
    assert head is not None
    name = head.group(0)
    value = namespace[name]
    for step in _STEP.finditer(expr, head.end()):
        if step.group("attr"):
            attr = step.group("attr")
            try:
                value = getattr(value, attr)
            except AttributeError:
                raise TemplateError(
                    f"{{{{{expr}}}}}: {type(value).__name__} object has no attribute {attr!r}"
                ) from None
        else:
            raw = step.group("index")
            key: Any = int(raw) if raw.lstrip("-").isdigit() else raw[1:-1]
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError) as exc:
                raise TemplateError(
                    f"{{{{{expr}}}}}: cannot index {type(value).__name__} with {raw} ({type(exc).__name__})"
                ) from None
    return value


def render_parts(
    text: str, namespace: Mapping[str, Any], options: Options | None = None, notes: list[str] | None = None,
    *, checked: bool = False,
) -> list[dict[str, Any] | PendingUpload | PendingInline]:
    """The cell text as content parts, references replaced by their objects' parts, in order.

    ``notes`` receives one line per object that was not sent whole (a sampled table). ``checked``: the
    text's references were already checked against names the namespace still has (``--over`` rows).
    """
    options = options or Options()
    notes = notes if notes is not None else []
    if not checked:
        _check_names(text, namespace)
    parts: list[dict[str, Any] | PendingUpload | PendingInline] = []
    pending_text: list[str] = []

    def flush() -> None:
        joined = "".join(pending_text)
        pending_text.clear()
        if joined.strip():
            parts.append({"type": "text", "text": joined})

    position = 0
    for match in REFERENCE.finditer(text):
        pending_text.append(text[position : match.start()])
        position = match.end()
        if match.group("escape"):
            pending_text.append(match.group(0)[1:])
            continue
        expr = match.group("expr")
        for part in object_parts(resolve(expr, namespace), expr, options, notes):
            if isinstance(part, dict) and part.get("type") == "text":
                pending_text.append(part["text"])
            else:
                flush()
                parts.append(part)
    pending_text.append(text[position:])
    flush()
    return parts


_OPEN = re.compile(r"(?<!\\)\{\{\s*(?P<name>[A-Za-z_]\w*)")
SYNTAX_HINT = (
    'references are {{name}}, {{name.attr}}, {{name[0]}} or {{name["key"]}}: compute anything else in a '
    "cell first (x = df.head()) and write {{x}}, or write \\{{ for a literal"
)


_EXPRESSION = re.compile(r"\s*(\.\s*[A-Za-z_]|\(|\[)")
"""What follows a name that makes ``{{name…}}`` read as code (a call, an attribute, an index), not prose."""


def _check_names(text: str, namespace: Mapping[str, Any]) -> None:
    """Every reference names a variable, and nothing that looks like one is left as text."""
    _refuse_lookalikes(text, namespace)
    missing = sorted({e.split(".")[0].split("[")[0].strip() for e in find_references(text)} - set(namespace))
    if missing:
        names = ", ".join(missing)
        raise TemplateError(
            f"unknown name{'s' if len(missing) > 1 else ''} in {{{{...}}}}: {names} (define it, or write \\{{{{ for a literal)"
        )


def _refuse_lookalikes(text: str, namespace: Mapping[str, Any]) -> None:
    """A ``{{`` naming a kernel variable must be a whole reference: never sent silently as text."""
    valid = {m.start() for m in REFERENCE.finditer(text)}
    for match in _OPEN.finditer(text):
        if match.start() in valid:
            continue
        end = text.find("}}", match.start())
        if match.group("name") not in namespace:
            inner = text[match.end() : end] if 0 <= end < match.start() + 60 else ""
            if _EXPRESSION.match(inner):  # {{df.head()}}: meant as a reference, so said as {{nope}} is
                raise TemplateError(f"unknown name in {{{{...}}}}: {match.group('name')} (define it, or write \\{{{{ for a literal)")
            continue
        shown = (
            text[match.start() : end + 2]
            if 0 <= end < match.start() + 60
            else text[match.start() : match.start() + 20] + "…"
        )
        what = "is not closed" if end < 0 else "is not a reference"
        raise TemplateError(f"{' '.join(shown.split())} {what}: {SYNTAX_HINT}")


def object_parts(
    obj: Any, label: str, options: Options, notes: list[str] | None = None
) -> list[dict[str, Any] | PendingUpload | PendingInline]:
    if isinstance(obj, str):
        return [_text(obj)]
    if isinstance(obj, bool | int | float) or obj is None:
        return [_text(str(obj))]
    if isinstance(obj, bytes | bytearray | memoryview):
        return [_bytes_part(bytes(obj), api_mime_type(_sniff(bytes(obj)), f"{{{{{label}}}}}"))]
    if isinstance(obj, Path):
        return [_path_part(obj, label, lazy=options.lazy_files)]
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if kind.startswith("pandas.") and type(obj).__name__ in ("DataFrame", "Series"):
        return [_text(summarise_table(obj, label, options, notes))]
    if kind.startswith("PIL.") or _has_mro(obj, "PIL.Image.Image"):
        return [_png_part(_pil_png(obj))]
    if kind.startswith("numpy.") and type(obj).__name__ == "ndarray":
        return [_array_part(obj, label, options)]
    if _has_mro(obj, "matplotlib.figure.Figure"):
        buffer = io.BytesIO()
        obj.savefig(buffer, format="png", bbox_inches="tight")
        return [_png_part(buffer.getvalue())]
    if kind in ("gemini_magics.types.files.File", "gemini_magics._media.Media"):
        return [obj.as_part()]  # an uploaded or remote file: its uri
    if isinstance(obj, dict | list | tuple):
        return [_text(json.dumps(obj, default=str, ensure_ascii=False))]
    to_dict = getattr(obj, "model_dump", None)
    if callable(to_dict):  # pydantic models: their JSON
        return [_text(json.dumps(to_dict(mode="json"), ensure_ascii=False))]
    return [_text(str(obj))]


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _has_mro(obj: Any, dotted: str) -> bool:
    return any(f"{c.__module__}.{c.__qualname__}" == dotted for c in type(obj).__mro__)


def _bytes_part(data: bytes, mime: str) -> dict[str, Any]:
    return {"type": part_kind(mime), "mime_type": mime, "data": base64.b64encode(data).decode()}


def _png_part(png: bytes) -> dict[str, Any]:
    return _bytes_part(png, "image/png")


def _sniff(data: bytes) -> str:
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


def _path_part(path: Path, label: str, *, lazy: bool = False) -> dict[str, Any] | PendingUpload | PendingInline:
    if not path.is_file():
        raise TemplateError(f"{{{{{label}}}}}: no such file: {path}")
    with path.open("rb") as head:
        mime = api_mime_type(
            guess_mime_type(path.name) or _sniff(head.read(4096)), f"{{{{{label}}}}} ({path.name})"
        )
    size = path.stat().st_size
    if size > (ROW_INLINE_LIMIT if lazy else INLINE_LIMIT):
        return PendingUpload(path, mime, label)
    if lazy:
        return PendingInline(path, mime, label)
    return _bytes_part(path.read_bytes(), mime)


def _pil_png(image: Any) -> bytes:
    buffer = io.BytesIO()
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA")
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def is_image_array(array: Any) -> bool:
    """Shaped and typed like an image: uint8 H×W or H×W×{1,3,4}, or float H×W×{3,4} within [0, 1].

    Anything else (``np.arange(12).reshape(3, 4)``) is data, sent as numbers.
    """
    import numpy as np

    shape: tuple[int, ...] = tuple(array.shape)
    channels_ok = len(shape) == 3 and shape[2] in (1, 3, 4)
    if array.dtype == np.uint8:
        return len(shape) == 2 or channels_ok
    if np.issubdtype(array.dtype, np.floating) and len(shape) == 3 and shape[2] in (3, 4) and array.size:
        return bool(np.nanmin(array) >= 0.0 and np.nanmax(array) <= 1.0)
    return False


def _array_part(array: Any, label: str, options: Options) -> dict[str, Any]:
    if is_image_array(array):
        try:
            from PIL import Image
        except ImportError:
            raise TemplateError(
                f"{{{{{label}}}}}: sending an array as an image needs Pillow (pip install pillow)"
            ) from None
        import numpy as np

        data = array
        if data.dtype != np.uint8:
            data = np.clip(np.nan_to_num(data) * 255.0, 0, 255).astype(np.uint8)
        if data.ndim == 3 and data.shape[2] == 1:
            data = data[:, :, 0]
        return _png_part(_pil_png(Image.fromarray(data)))
    values = json.dumps(array.tolist(), default=str) if array.size <= options.table_budget else repr(array)
    text = f"array {label} shape={tuple(array.shape)} dtype={array.dtype}:\n{values}"
    return _text(_cap(text, options.table_budget))


def _cap(text: str, budget: int) -> str:
    if len(text) <= budget:
        return text
    return text[: budget - 60] + f"\n[... cut to {budget} characters of {len(text)}]"


def summarise_table(obj: Any, label: str, options: Options, notes: list[str] | None = None) -> str:
    """Shape, dtypes and the rows as CSV: the whole table when it fits ``options.table_budget``
    characters, else a head/tail sample of at most ``options.max_rows`` rows (said in ``notes``)."""
    frame = obj.to_frame() if type(obj).__name__ == "Series" else obj
    rows, cols = frame.shape
    shown_cols = list(frame.columns[: options.max_columns])
    lines = [f"{type(obj).__name__} {label}: {rows} rows × {cols} columns"]
    lines.append("columns: " + ", ".join(f"{c} ({frame[c].dtype})" for c in shown_cols))
    if cols > len(shown_cols):
        lines.append(f"(only the first {len(shown_cols)} of {cols} columns are shown)")
    header = "\n".join(lines)
    sample = frame[shown_cols]
    for n in (rows, options.max_rows, 10, 5, 3, 1):
        if n > rows or (n < rows and n > options.max_rows):
            continue
        if n >= rows:
            body, note = sample.to_csv(), ""
        else:
            head = max(1, (n + 1) // 2)
            tail = n - head
            body = sample.head(head).to_csv()
            if tail:
                body += "...\n" + sample.tail(tail).to_csv(header=False)
            note = f"(sample: first {head} and last {tail} of {rows} rows, within {options.max_rows} rows and a {options.table_budget}-character budget)"
        text = f"{header}\n{note}\n{body}".replace("\n\n", "\n")
        if len(text) <= options.table_budget:
            _note_sample(notes, label, n, rows, len(shown_cols), cols)
            return text.rstrip("\n")
    _note_sample(notes, label, 1, rows, len(shown_cols), cols)
    return _cap(f"{header}\n{sample.head(1).to_csv()}", options.table_budget)


def _note_sample(
    notes: list[str] | None, label: str, sent: int, rows: int, shown_cols: int, cols: int
) -> None:
    if notes is None or (sent >= rows and shown_cols >= cols):
        return
    columns = f", {shown_cols} of {cols} columns" if shown_cols < cols else ""
    notes.append(f"{label}: {min(sent, rows):,} of {rows:,} rows{columns} sent (--dry-run shows them)")


def summarise_pending(value: PendingInline | PendingUpload) -> dict[str, Any]:
    """A file not read yet, for display: what it is and how it will go."""
    how = "inline, read when sent" if isinstance(value, PendingInline) else "through the Files API"
    return {"type": part_kind(value.mime_type), "mime_type": value.mime_type, "file": str(value.path),
            "size": f"{value.path.stat().st_size} bytes", "sent": how}  # fmt: skip


def summarise_part(part: dict[str, Any]) -> dict[str, Any]:
    """A part for display: base64 walls replaced by their size and type."""
    out = dict(part)
    data = out.get("data")
    if isinstance(data, str) and len(data) > 80:
        size = len(data) * 3 // 4 - data[-2:].count("=")  # the decoded size exactly
        out["data"] = f"<{size} bytes {out.get('mime_type', '')}>".replace(" >", ">")
    return out
