"""Media, all the way: remote URIs, uploaded files, video, MIME types, image options, galleries, saving.

Loopback tests in a real IPython shell against the embedded scripted server; what was sent is checked on
the requests the server received.
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest

from conftest import Shell, requests_to
from gemini_magics import Client, media
from gemini_magics.local.engines.base import EngineRequest
from gemini_magics.local.engines.scripted import image_pixels
from gemini_magics.local.media_info import duration_seconds


def last_create(server: Any) -> dict[str, Any]:
    return [r["json"] for r in requests_to(server, "/interactions") if r["path"].endswith("/interactions")][-1]


def sent_parts(server: Any) -> list[dict[str, Any]]:
    sent = last_create(server)["input"]
    return [{"type": "text", "text": sent}] if isinstance(sent, str) else sent


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4(seconds: float, padding: int = 0) -> bytes:
    """A minimal MP4: ftyp, a moov with an mvhd saying how long it is, and an mdat of ``padding`` bytes."""
    mvhd = bytes(4) + struct.pack(">IIII", 0, 0, 1000, int(seconds * 1000)) + bytes(80)
    return box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41") + box(b"moov", box(b"mvhd", mvhd)) + box(b"mdat", bytes(padding))


def webm(seconds: float) -> bytes:
    """A minimal WebM: the EBML header, then a Segment whose Info holds the Duration (in milliseconds)."""
    duration = b"\x44\x89\x88" + struct.pack(">d", seconds * 1000)
    scale = b"\x2a\xd7\xb1\x83\x0f\x42\x40"  # 1,000,000 ns
    info = b"\x15\x49\xa9\x66" + bytes([0x80 | len(scale + duration)]) + scale + duration
    header = b"\x1a\x45\xdf\xa3\x87\x42\x82\x84webm"
    return header + b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff" + info


def test_container_durations() -> None:
    assert duration_seconds(mp4(2.5), "video/mp4") == 2.5
    assert duration_seconds(webm(3.25), "video/webm") == pytest.approx(3.25)
    assert duration_seconds(b"not a video", "video/mp4") is None


# -- inputs -----------------------------------------------------------------------------------------------


def test_remote_uris_become_uri_parts(shell: Shell, server: Any) -> None:
    shell.ip.user_ns.update(
        cats=media("https://example.com/img/cats-and-dogs.jpg"),
        clip=media("https://www.youtube.com/watch?v=9hE5-98ZeCg"),
        scan=media("gs://bucket/reports/q3.pdf"),
        raw=media("https://example.com/render?id=7", mime_type="image/png"),
    )
    shell.run("%%interact --new\nCompare {{cats}}, {{clip}}, {{scan}} and {{raw}}")
    parts = sent_parts(server)
    assert {"type": "image", "uri": "https://example.com/img/cats-and-dogs.jpg", "mime_type": "image/jpeg"} in parts
    assert {"type": "video", "uri": "https://www.youtube.com/watch?v=9hE5-98ZeCg"} in parts
    assert {"type": "document", "uri": "gs://bucket/reports/q3.pdf", "mime_type": "application/pdf"} in parts
    assert {"type": "image", "uri": "https://example.com/render?id=7", "mime_type": "image/png"} in parts
    shown = repr(shell.run("%%interact --dry-run\nLook at {{cats}}"))
    assert '"uri": "https://example.com/img/cats-and-dogs.jpg"' in shown


def test_bad_media_is_one_line(shell: Shell, tmp_path: Path) -> None:
    archive = tmp_path / "data.zip"
    archive.write_bytes(b"PK\x03\x04" + bytes(100))
    shell.ip.user_ns["archive"] = archive
    error = shell.fail("%%interact\nOpen {{archive}}")
    assert "the API does not take application/zip files" in str(error) and "\n" not in str(error)
    for call, expected in [("media('file:///etc/passwd')", "expected an http(s):// or gs:// URL"),
                           ("media('https://example.com/page')", "cannot tell its type")]:  # fmt: skip
        error = shell.fail(f"from gemini_magics import media\n{call}")
        assert expected in str(error)


def test_mime_types_are_the_apis_names(shell: Shell, server: Any, tmp_path: Path) -> None:
    for name, data, expected in [
        ("beep.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28), "audio/wav"),
        ("clip.mov", mp4(1.0), "video/mov"),
        ("song.mp3", b"ID3" + bytes(64), "audio/mpeg"),  # the SDK's own name for it: kept, not rewritten
        ("voice.opus", b"OggS" + bytes(64), "audio/opus"),
        ("memo.m4a", b"\x00\x00\x00\x20ftypM4A " + bytes(64), "audio/m4a"),
        ("scan.bmp", b"BM" + bytes(64), "image/bmp"),
        ("scan.tiff", b"II*\x00" + bytes(64), "image/tiff"),
        ("plan.docx", b"PK\x03\x04" + bytes(64), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("sheet.ods", b"PK\x03\x04" + bytes(64), "application/vnd.oasis.opendocument.spreadsheet"),
        ("notes.md", b"# notes", "text/markdown"),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        shell.ip.user_ns["f"] = path
        shell.run("%%interact --new\nWhat is {{f}}?")
        assert sent_parts(server)[1]["mime_type"] == expected, name


def test_an_uploaded_file_is_its_uri_and_files_are_listed_and_deleted(shell: Shell, server: Any) -> None:
    client = Client(base_url=server.base_url)
    uploaded = client.files.upload(b"quarterly numbers: up 4%", mime_type="text/plain", display_name="q3.txt")
    shell.ip.user_ns["report"] = uploaded
    answer = shell.run("%%interact --new\nSummarise {{report}}")
    assert sent_parts(server)[1] == {"type": "document", "uri": uploaded.uri, "mime_type": "text/plain"}
    assert "quarterly numbers: up 4%" in answer.text  # the local engine read the uploaded file


def test_a_large_video_goes_up_once_waits_for_active_and_is_described(
    shell: Shell, server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import gemini_magics.inputs as inputs

    monkeypatch.setattr(inputs, "INLINE_LIMIT", 10_000)
    movie = tmp_path / "holiday.mp4"
    movie.write_bytes(mp4(12.5, padding=50_000))
    shell.ip.user_ns["movie"] = movie
    first = shell.run("%%interact --new\nWhat happens in {{movie}}?")
    said = capsys.readouterr().out
    assert "uploading holiday.mp4 (0.1 MB) through the Files API" in said and "waiting until it is ACTIVE" in said
    part = sent_parts(server)[1]
    assert part["type"] == "video" and part["mime_type"] == "video/mp4" and "/files/" in part["uri"]
    assert "video attachment: video/mp4, 12.5 s, 50" in first.text
    shell.run("%%interact --new\nAnd now, what happens in {{movie}}?")  # a re-run: no second upload
    named = [r for r in requests_to(server, "/upload/v1beta/files") if "holiday.mp4" in json.dumps(r.get("json"))]
    assert len(named) == 1
    assert sent_parts(server)[1]["uri"] == part["uri"]
    listing = repr(shell.ip.run_line_magic("interact", "files"))
    name = part["uri"].split("/v1beta/")[1]
    assert name in listing and "video/mp4" in listing
    shell.ip.run_line_magic("interact", f"files delete {name}")
    assert name not in repr(shell.ip.run_line_magic("interact", "files"))
    assert name not in [f.name for f in Client(base_url=server.base_url).files.list()]  # gone from the server too


def test_a_small_video_goes_inline_and_webm_is_described(shell: Shell, server: Any, tmp_path: Path) -> None:
    clip = tmp_path / "clip.webm"
    clip.write_bytes(webm(4.0))
    shell.ip.user_ns["clip"] = clip
    answer = shell.run("%%interact --new\nDescribe {{clip}}")
    part = sent_parts(server)[1]
    assert part["type"] == "video" and part["mime_type"] == "video/webm" and base64.b64decode(part["data"]) == webm(4.0)
    assert "video attachment: video/webm, 4.0 s" in answer.text


# -- image output -----------------------------------------------------------------------------------------


def test_image_options_reach_the_server_and_are_honoured(shell: Shell, server: Any) -> None:
    result = shell.run("%%interact --image --aspect-ratio 16:9 --image-size 1K -o wide\nA wide harbour")
    image_format = next(f for f in last_create(server)["response_format"] if f["type"] == "image")
    assert image_format == {"type": "image", "mime_type": "image/jpeg", "aspect_ratio": "16:9", "image_size": "1K"}
    assert result.images[0].size == (1024, 576)
    assert image_pixels("9:16", "512") == (288, 512) and image_pixels("21:9", None) == (320, 137)
    legacy = EngineRequest(model="m", history=[], generation_config={"image_config": {"aspect_ratio": "4:3", "image_size": "2K"}})
    assert legacy.image_shape() == ("4:3", "2K")
    for line, expected in [("--image --aspect-ratio 7:3", "invalid choice"), ("--image-size 1K", "add --image")]:
        error = shell.fail(f"%%interact {line}\nx")
        assert expected in str(error) and "\n" not in str(error)


def test_several_images_make_a_gallery_and_all_are_kept(shell: Shell) -> None:
    result = shell.run("%%interact --image\nDraw three images of a lighthouse")
    assert len(result.images) == 3
    markdown = result._repr_mimebundle_()[0]["text/markdown"]
    gallery = next(line for line in markdown.split("\n\n") if line.startswith("![generated image 1]"))
    assert gallery.count("![generated image") == 3  # side by side, in one paragraph


def test_editing_an_image_by_reference_in_and_across_chains(shell: Shell, server: Any) -> None:
    shell.run("%%interact --image -o pic\nA lighthouse at dawn")
    edited = shell.run("%%interact --image -o storm\nMake the sky in {{pic.images[0]}} stormy")
    sent = sent_parts(server)
    assert sent[1]["type"] == "image" and sent[1]["mime_type"] == "image/png" and last_create(server).get("previous_interaction_id")
    assert len(edited.images) == 1
    shell.run("%%interact --image --chain elsewhere\nPaint {{storm.images[0]}} as a watercolour")
    assert sent_parts(server)[1]["type"] == "image" and "previous_interaction_id" not in last_create(server)
    assert "in or across chains" in shell.magics.interact.__doc__


def test_save_writes_markdown_images_and_data(shell: Shell, tmp_path: Path) -> None:
    shell.ip.user_ns["Spec"] = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    result = shell.run("%%interact --image --schema Spec\nDraw two images of Ada")
    written = result.save(tmp_path / "out", stem="ada")
    assert [p.name for p in written] == ["ada.md", "ada-image-1.jpg", "ada-image-2.jpg", "ada.json"]
    assert "![image 2](ada-image-2.jpg)" in written[0].read_text()
    assert written[1].read_bytes().startswith(b"\xff\xd8\xff") and '"name"' in written[3].read_text()


def test_big_images_are_saved_as_previews_and_kept_whole(shell: Shell) -> None:
    result = shell.run("%%interact --image --image-size 4K --aspect-ratio 1:1\nA huge mural")
    assert result.images[0].size == (4096, 4096)
    bundle = result._repr_mimebundle_()[0]
    assert "preview of 4096×4096" in bundle["text/markdown"] and "data:image/jpeg;base64," in bundle["text/markdown"]
    assert "image/jpeg" not in bundle  # the full image is not embedded in the notebook
    assert len(bundle["text/markdown"]) < 400_000


def test_an_exported_notebook_shows_every_image_and_the_json(tmp_path: Path) -> None:
    from nbconvert import HTMLExporter
    from test_notebooks import run_cells

    cells = [
        "%load_ext gemini_magics",
        "%%interact --image\nDraw two images of a fox",
        "from pydantic import BaseModel\nclass Move(BaseModel):\n    person: str\n    city: str",
        "%%interact --schema Move\nAlice moved to Paris.",
        "%%interact --image --schema Move\nBob moved to Rome; draw it.",
    ]
    notebook = run_cells(cells, tmp_path)
    page, _ = HTMLExporter().from_notebook_node(notebook)
    assert page.count('src="data:image/jpeg;base64,') >= 3  # two for the fox, one for Bob
    assert "&quot;person&quot;" in page or '"person"' in page
    assert "Alice" in page and "Bob" in page


def test_a_locally_drawn_image_says_it_is_a_stand_in(shell: Any) -> None:
    result = shell.run("%%interact --image\nA lighthouse at dawn")
    bundle, _ = result._repr_mimebundle_()
    said = "a labelled stand-in drawn by the embedded local server"
    assert f"*Image: {said}" in bundle["text/markdown"] and said in bundle["text/plain"]
    (block,) = result._image_blocks
    assert said in block.model_extra["x_gemini_magics_local"]  # carried by the stream's image delta


def test_audio_answers_play_measure_and_save(shell: Any, server: Any, tmp_path: Path) -> None:
    import io
    import wave

    said = shell.run("%%interact --audio --voice Alice=Kore,Bob=Puck -o said\nAlice: Hello Bob.\nBob: Hi Alice.")
    sent = requests_to(server, "/interactions")[-1]["json"]
    assert sent["model"] == "gemini-2.5-flash-preview-tts" and sent["response_format"] == {"type": "audio", "mime_type": "audio/wav"}
    assert sent["generation_config"]["speech_config"] == [{"speaker": "Alice", "voice": "Kore"}, {"speaker": "Bob", "voice": "Puck"}]
    clip = shell.ip.user_ns["said"].audio
    assert clip.mime_type == "audio/wav" and clip.duration is not None and clip.duration > 0.5
    with wave.open(io.BytesIO(clip.data)) as reader:  # a real WAV
        assert reader.getnframes() > 0
    assert clip.save(tmp_path / "said.wav").read_bytes() == clip.data
    bundle, _ = said._repr_mimebundle_()
    assert '<audio controls preload="metadata" src="data:audio/wav;base64,' in bundle["text/markdown"]
    assert f"*Audio: {clip.duration:.1f} s · audio/wav · " in bundle["text/markdown"] and "[audio: " in bundle["text/plain"]
    shell.run("%%interact --audio --voice Kore\nSay hello.")
    assert requests_to(server, "/interactions")[-1]["json"]["generation_config"]["speech_config"] == [{"voice": "Kore"}]


def test_without_a_synthesizer_the_local_server_answers_a_synthetic_signal_and_says_so(monkeypatch: Any) -> None:
    import io
    import wave

    import gemini_magics.local.speech as speech

    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    spoken = speech.speak("three short words")
    assert "synthetic signal, one tone a word" in spoken.how and "apt install espeak-ng" in spoken.how
    with wave.open(io.BytesIO(spoken.wav)) as reader:
        assert reader.getframerate() == 24_000 and reader.getnframes() == 3 * int(24_000 * 0.22)
    if shutil.which("espeak-ng"):  # where it is installed (scripts/run.sh installs it), it really speaks
        monkeypatch.undo()
        assert speech.speak("hello").how.startswith("spoken by espeak-ng")


def test_transcribe_sends_the_config_and_binds_text_and_speaker_turns(shell: Any, server: Any, tmp_path: Path) -> None:
    from gemini_magics.local.speech import speak

    recording = tmp_path / "meeting.wav"
    recording.write_bytes(speak("hello there everyone").wav)
    shell.ip.user_ns["rec"] = recording
    said = shell.run("%%interact --transcribe --speakers -o t\nTranscribe {{rec}}")
    sent = requests_to(server, "/interactions")[-1]["json"]
    assert sent["generation_config"]["transcription_config"] == {"mode": {"type": "verbatim", "diarization_mode": "speaker"}}
    parts = sent["input"][-1]["content"] if "content" in sent["input"][-1] else sent["input"]
    assert [b["type"] for b in parts if b["type"] != "text"] == ["audio"]
    assert "stand-in transcript of audio attachment: audio/wav" in said.transcript and "cannot hear" in said.transcript
    turns = said.speaker_turns
    assert [who for who, _ in turns] == ["Speaker 1", "Speaker 2"] and turns[0][1].startswith("um, this is a stand-in")
    smart = shell.run("%%interact --transcribe smart --new\nTranscribe {{rec}}")
    assert smart.transcript.startswith("This is a stand-in transcript") and "um," not in smart.transcript
    assert requests_to(server, "/interactions")[-1]["json"]["generation_config"]["transcription_config"] == {"mode": {"type": "smart"}}


def test_video_runs_in_the_background_and_plays_from_its_poster(shell: Any, server: Any, tmp_path: Path) -> None:
    import av

    shell.ip.user_ns["pic"] = __import__("PIL.Image", fromlist=["Image"]).new("RGB", (64, 64), (200, 30, 30))
    started = shell.run("%%interact --video --duration 3 --aspect-ratio 9:16 --resolution 360p -o clip\nAnimate {{pic}}")
    getattr(started, "done", None) and started.done.wait(30)  # a background run (or, already done, its result)
    sent = [r["json"] for r in requests_to(server, "/interactions") if r["method"] == "POST"][-1]
    assert sent["model"] == "veo-3.1-generate-preview" and sent["background"] is True
    assert sent["response_format"] == {"type": "video", "delivery": "inline", "aspect_ratio": "9:16", "resolution": "360p", "duration": "3s"}
    assert sent["generation_config"]["video_config"] == {"task": "image_to_video"}  # the image referenced: its first frame
    clip = shell.ip.user_ns["clip"].video
    assert clip.mime_type == "video/webm" and abs(clip.duration - 3.0) < 0.2 and "over the image given" in clip.note
    with av.open(__import__("io").BytesIO(clip.data)) as container:  # a real, decodable video, portrait
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width < stream.height) == ("vp8", True)
    assert clip.poster() is not None and clip.poster().startswith(b"\xff\xd8")
    markdown = shell.ip.user_ns["clip"]._repr_mimebundle_()[0]["text/markdown"]
    assert '<video controls preload="metadata" poster="data:image/jpeg;base64,' in markdown and "*Video: 3.0 s · video/webm" in markdown
    assert clip.save(tmp_path / "clip.webm").read_bytes() == clip.data


def test_rows_of_recordings_are_transcribed_each_and_a_table_is_read_out(shell: Any, server: Any, tmp_path: Path) -> None:
    import pandas as pd

    from gemini_magics.local.speech import speak

    files = []
    for n, words in enumerate(["hello there", "good morning to everyone here"]):
        files.append(tmp_path / f"call-{n}.wav")
        files[-1].write_bytes(speak(words).wav)
    shell.ip.user_ns["calls"] = pd.DataFrame({"file": files})
    shell.run("%%interact --over calls --transcribe -o transcripts\nTranscribe {{row.file}}")
    frame = shell.ip.user_ns["transcripts"]
    assert list(frame["_status"]) == ["ok", "ok"] and frame["text"].str.contains("stand-in transcript of audio").all()
    assert frame["text"].iloc[0] != frame["text"].iloc[1]  # each row its own recording (its own length)
    shell.ip.user_ns["sales"] = pd.DataFrame({"region": ["north", "south"], "units": [3, 5]})
    read = shell.run("%%interact --audio --new\nRead this table aloud: {{sales}}")
    sent = requests_to(server, "/interactions")[-1]["json"]["input"]
    assert "north" in json.dumps(sent) and read.audio is not None and read.audio.duration > 1.0


def test_save_writes_spoken_answers_and_videos_beside_the_text(shell: Any, tmp_path: Path) -> None:
    said = shell.run("%%interact --audio\nSay hello.")
    names = sorted(p.name for p in said.save(tmp_path, stem="said"))
    assert names == ["said-audio-1.wav", "said.md"] and "[audio 1](said-audio-1.wav)" in (tmp_path / "said.md").read_text()
    assert (tmp_path / "said-audio-1.wav").read_bytes() == said.audio.data


@pytest.mark.parametrize(("cell", "expected"), [
    ("%%interact --voice Kore\nSay hi.", "--voice picks the voice of spoken answers: add --audio"),
    ("%%interact --audio --voice Alice=,Bob=Puck\nSay hi.", "write each speaker as Name=Voice"),
    ("%%interact --audio --voice Kore,Puck\nSay hi.", "one voice (Kore), or Speaker=Voice pairs"),
    ("%%interact --audio --image\nSay hi.", "--audio answers with speech alone"),
    ("%%interact --duration 5\nA kite.", "--duration and --resolution shape a generated video: add --video"),
    ("%%interact --video --aspect-ratio 4:3\nA kite.", "a video is 16:9 or 9:16"),
    ("%%interact --video --duration 0\nA kite.", "--duration must be 1 to 60 seconds"),
    ("%%interact --video --audio\nA kite.", "--video answers with a video alone"),
    ("%%interact --transcribe\nTranscribe nothing", "--transcribe transcribes audio or video: reference one"),
    ("%%interact --speakers\nHi", "--speakers tells who said what in a verbatim transcript"),
])  # fmt: skip
def test_bad_speech_and_video_options_are_one_line(shell: Any, cell: str, expected: str) -> None:
    error = shell.fail(cell)
    assert expected in str(error) and "\n" not in str(error)
