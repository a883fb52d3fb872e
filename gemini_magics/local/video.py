"""Video for the local server's ``--video`` answers: a real, playable WebM (VP8), drawn with Pillow frame by
frame and encoded with PyAV (the ``local`` extra; its wheels carry ffmpeg). The picture is a labelled
stand-in: the prompt's words over a moving band, starting from the image the request gave when there is
one (``image_to_video``)."""

from __future__ import annotations

import io
import textwrap

FPS = 12
LONG_SIDE = {"360p": 360, "720p": 480, "1080p": 480, "4k": 480}
"""Pixels on the long side by resolution, capped: the stand-in need not be big to be played."""


def make_video(prompt: str, *, seconds: int = 4, aspect_ratio: str = "16:9", resolution: str = "720p",
               first_frame: bytes | None = None) -> bytes:  # fmt: skip
    """A WebM of ``seconds`` seconds; raises ImportError when PyAV is missing."""
    import av
    from PIL import Image, ImageDraw

    width, height = _size(aspect_ratio, LONG_SIDE.get(resolution, 480))
    start = Image.open(io.BytesIO(first_frame)).convert("RGB").resize((width, height)) if first_frame else None
    lines = textwrap.wrap(prompt.strip() or "(no prompt)", width=max(12, width // 9))[:4]
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = 400_000
        frames = max(1, seconds * FPS)
        for n in range(frames):
            frame = start.copy() if start is not None else Image.new("RGB", (width, height), (32, 38, 52))
            draw = ImageDraw.Draw(frame)
            x = int((width + 80) * n / frames) - 80
            draw.rectangle([x, height - 36, x + 80, height - 12], fill=(66, 133, 244))
            for i, line in enumerate(lines):
                draw.text((12, 12 + 16 * i), line, fill=(240, 240, 240))
            draw.text((12, height - 56), f"local stand-in video · {n / FPS:.1f} s", fill=(200, 200, 200))
            for packet in stream.encode(av.VideoFrame.from_image(frame)):  # type: ignore[no-untyped-call]
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def _size(aspect_ratio: str, long_side: int) -> tuple[int, int]:
    w, h = (int(x) for x in (aspect_ratio if aspect_ratio in ("16:9", "9:16") else "16:9").split(":"))
    scale = long_side / max(w, h)
    return (int(w * scale) // 2 * 2, int(h * scale) // 2 * 2)  # even sides: what yuv420p takes
