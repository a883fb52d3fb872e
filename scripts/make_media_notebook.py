"""Writes notebooks/images_and_media.ipynb (sources and tags); outputs come from executing it
(scripts/refresh_notebooks.sh)."""

from __future__ import annotations

from _notebooks import CHECK, write_notebook
from nbformat.v4 import new_code_cell, new_markdown_cell

cells = [
    new_markdown_cell(
        "# Images and media\n\n"
        "Generate images, edit them by reference, shape them, and ask about images, PDFs, audio and video — each "
        "one cell. This notebook makes all its media itself and runs offline on the embedded scripted engine "
        "(which draws labelled pictures and describes what it cannot see)."
    ),
    new_code_cell("%load_ext gemini_magics"),
    new_markdown_cell(
        "## Generating\n\n`--image` asks for images; they come back as PIL images in `.images`."
    ),
    new_code_cell("%%interact --image -o lighthouse\nA lighthouse on a cliff at dawn"),
    new_code_cell("lighthouse.images[0].size", metadata=CHECK),
    new_markdown_cell(
        "`--aspect-ratio` (1:8 to 8:1, and 21:9) and `--image-size` (512, 1K, 2K, 4K) shape them. Several images "
        "in one answer show as a gallery, each with a Save button while it streams."
    ),
    new_code_cell(
        "%%interact --image --aspect-ratio 16:9 --image-size 512 -o banners\nDraw three images of a harbour banner"
    ),
    new_code_cell("[image.size for image in banners.images]", metadata=CHECK),
    new_markdown_cell(
        "## Editing by reference\n\nReference a generated image in the next `--image` cell: that is the edit "
        "workflow, in the same chain or another one."
    ),
    new_code_cell("%%interact --image -o stormy\nMake the sky in {{lighthouse.images[0]}} stormy"),
    new_code_cell("len(stormy.images)", metadata=CHECK),
    new_markdown_cell(
        "Big images stay whole in `.images`; the saved notebook embeds a preview past "
        "`%config InteractMagics.preview_px` (1,024 px), so it stays light. `.save()` writes everything to disk:"
    ),
    new_code_cell(
        "import tempfile\n\n[path.name for path in banners.save(tempfile.mkdtemp(), stem='banners')]",
        metadata=CHECK,
    ),
    new_markdown_cell(
        "## Understanding media\n\nA `pathlib.Path`, bytes, a PIL image or a figure in `{{...}}` becomes an image, "
        "audio, video or document part, with the MIME type the API expects. Files over the inline limit go "
        "through the Files API once per kernel (`%interact files` lists them). Here, media made on the spot:"
    ),
    new_code_cell(
        "import math, struct, tempfile, wave\n"
        "from pathlib import Path\n\n"
        'made = Path(tempfile.mkdtemp(prefix="media-"))  # where this notebook\'s files go\n\n'
        "from PIL import Image, ImageDraw\n\n"
        "# a chart-like picture, and the same as a one-page PDF\n"
        'chart = Image.new("RGB", (240, 160), "white")\n'
        "draw = ImageDraw.Draw(chart)\n"
        "for i, h in enumerate([40, 90, 60, 120]):\n"
        '    draw.rectangle([20 + 50 * i, 150 - h, 50 + 50 * i, 150], fill="steelblue")\n'
        'pdf = made / "chart.pdf"\n'
        "chart.save(pdf)\n\n"
        "# one second of a 440 Hz tone\n"
        'tone = made / "tone.wav"\n'
        'with wave.open(str(tone), "wb") as out:\n'
        "    out.setnchannels(1)\n"
        "    out.setsampwidth(2)\n"
        "    out.setframerate(8000)\n"
        '    out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * t / 8000))) for t in range(8000)))'
    ),
    new_code_cell("%%interact --new\nWhat does this chart show? {{chart}}", metadata=CHECK),
    new_code_cell("%%interact --new\nSummarise this PDF: {{pdf}}", metadata=CHECK),
    new_code_cell("%%interact --new\nWhat do you hear? {{tone}}", metadata=CHECK),
    new_markdown_cell(
        "A short video: twelve frames drawn with Pillow, packed as a Motion-JPEG AVI (no video library needed). "
        "The scripted engine reads its length from the container; a real model watches it."
    ),
    new_code_cell(
        "import io\n\n\n"
        "def avi(frames, fps=6):\n"
        '    """Motion-JPEG AVI from PIL images (just enough of the RIFF format for players and the API)."""\n'
        "    jpegs = []\n"
        "    for frame in frames:\n"
        "        buffer = io.BytesIO()\n"
        '        frame.save(buffer, format="JPEG")\n'
        '        jpegs.append(buffer.getvalue() + b"\\0" * (len(buffer.getvalue()) % 2))\n'
        "    w, h = frames[0].size\n"
        '    chunk = lambda tag, data: tag + struct.pack("<I", len(data)) + data\n'
        '    lst = lambda kind, data: b"LIST" + struct.pack("<I", len(data) + 4) + kind + data\n'
        '    avih = struct.pack("<10I4x12x", 1_000_000 // fps, 0, 0, 0, len(jpegs), 0, 1, 0, w, h)\n'
        '    strh = b"vidsMJPG" + struct.pack("<IHHIIIIIIIIhhhh", 0, 0, 0, 0, 1, fps, 0, len(jpegs), 0, 0, 0, 0, 0, w, h)\n'
        '    strf = struct.pack("<IiiHH4sIiiII", 40, w, h, 1, 24, b"MJPG", w * h * 3, 0, 0, 0, 0)\n'
        '    header = lst(b"hdrl", chunk(b"avih", avih) + lst(b"strl", chunk(b"strh", strh) + chunk(b"strf", strf)))\n'
        '    movie = lst(b"movi", b"".join(chunk(b"00dc", j) for j in jpegs))\n'
        '    body = b"AVI " + header + movie\n'
        '    return b"RIFF" + struct.pack("<I", len(body)) + body\n\n\n'
        'frames = [Image.new("RGB", (160, 120), (20 * i, 80, 200 - 15 * i)) for i in range(12)]\n'
        'clip = made / "sunset.avi"\n'
        "size = clip.write_bytes(avi(frames))"
    ),
    new_code_cell("%%interact --new\nWhat happens in this clip? {{clip}}", metadata=CHECK),
    new_markdown_cell(
        "## Remote and uploaded files\n\n"
        "`gemini_magics.media(url)` marks a URL as media rather than text: http(s), `gs://` and YouTube URLs "
        "become `uri` parts (`--dry-run` shows them; the embedded server cannot fetch them offline). A `File` "
        "from `client.files.upload(...)` works the same way."
    ),
    new_code_cell(
        "from gemini_magics import media\n\n"
        'cats = media("https://storage.googleapis.com/generativeai-downloads/images/cats-and-dogs.jpg")\n'
        'talk = media("https://www.youtube.com/watch?v=9hE5-98ZeCg")'
    ),
    new_code_cell("%%interact --new --dry-run\nCompare {{cats}} with the video {{talk}}", metadata=CHECK),
    new_markdown_cell(
        "## Speech out\n\n`--audio` asks a speech model (`InteractMagics.audio_model`) to read the cell aloud: the answer "
        "plays inline, and `.audio` holds it (`.data`, `.mime_type`, `.duration`, `.save()`). `--voice Kore` picks a "
        "voice; `--voice Alice=Kore,Bob=Puck` gives each speaker named in the prompt their own. Offline, the embedded "
        "server speaks with the machine's synthesizer (`espeak-ng`), or a synthetic signal where there is none, and "
        "says which under the player."
    ),
    new_code_cell("%%interact --audio --voice Alice=Kore,Bob=Puck -o said\nAlice: Did the kite fly?\nBob: Higher than the lighthouse."),
    new_code_cell("said.audio.mime_type, said.audio.duration > 0", metadata=CHECK),
    new_markdown_cell(
        "## Video out\n\n`--video` asks a video model (`InteractMagics.video_model`) for a clip: it runs in the "
        "background (generation takes minutes on the API) with progress and Cancel, then plays inline, with its "
        "first frame as the poster a saved notebook shows. `--duration 8`, `--aspect-ratio 9:16` and `--resolution "
        "720p` shape it; reference an image (`{{pic.images[0]}}`) to start from it. `.video` holds it (`.save()`). "
        "Offline, the embedded server draws a stand-in clip (a real WebM) and says so."
    ),
    new_code_cell("%%interact --video --duration 2 -o clip\nA kite over the sea at dawn"),
    new_code_cell("%interact wait"),
    new_code_cell("clip.video.mime_type, round(clip.video.duration)", metadata=CHECK),
]
write_notebook("images_and_media.ipynb", cells)
