"""Speech for the local server's ``--audio`` answers: real WAV, spoken by a synthesizer on this machine.

Debian's ``espeak-ng`` speaks when it is installed (``apt install espeak-ng``; ``scripts/run.sh`` installs it);
else the answer is a clearly synthetic but valid signal, one tone a word, and the answer says which. The
text is untrusted (it comes from prompts): it reaches the synthesizer as one argument after ``--`` (no
shell, no options, no SSML), capped in length, with a time limit.
"""

from __future__ import annotations

import array
import hashlib
import io
import math
import re
import shutil
import subprocess
import wave
from dataclasses import dataclass

MAX_CHARS = 2_000
SAMPLE_RATE = 24_000
"""The rate of the synthetic signal (the API's speech is 24 kHz PCM too)."""
_SPEAKER_LINE = re.compile(r"^\s*([A-Z][\w .'-]{0,40}):\s*(.+)$")
_VARIANTS = ("m3", "f2", "m1", "f4", "m7", "f1")
"""espeak-ng voice variants, one per speaker, so several speakers sound apart."""


@dataclass(frozen=True)
class Speech:
    wav: bytes
    how: str
    """What spoke, for the answer's local note."""

    @property
    def sample_rate(self) -> int:
        with wave.open(io.BytesIO(self.wav)) as reader:
            return int(reader.getframerate())

    @property
    def seconds(self) -> float:
        from .media_info import duration_seconds

        return duration_seconds(self.wav, "audio/wav") or 0.0


def speak(text: str, voices: dict[str, str] | None = None) -> Speech:
    """``text`` as speech. ``voices`` maps speaker names to voices: lines such as ``Alice: Hi`` are then
    spoken in one voice a speaker (the API's voice names cannot be had offline; each speaker gets its own)."""
    text = " ".join(text.split("\n")) if not voices else text
    segments = _segments(text[:MAX_CHARS], voices or {})
    synthesizer = shutil.which("espeak-ng")
    if synthesizer:
        try:
            clips = [_espeak(synthesizer, words, variant) for words, variant in segments]
            return Speech(_joined(clips), "spoken by espeak-ng on this machine (the API's voices sound different)")
        except (OSError, subprocess.SubprocessError, wave.Error, EOFError):
            pass  # a synthesizer that fails: the signal below, still a valid answer, and said so
    clips = [_tones(words) for words, _ in segments]
    return Speech(_joined(clips), "a synthetic signal, one tone a word: no speech synthesizer on this machine "
                                  "(apt install espeak-ng)")  # fmt: skip


def _segments(text: str, voices: dict[str, str]) -> list[tuple[str, str]]:
    """(words, espeak variant) runs: one per speaker line when speakers are named, else the whole text."""
    if not voices:
        return [(text.strip() or "(silence)", _VARIANTS[0])]
    order = list(voices)
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = _SPEAKER_LINE.match(line)
        who, said = (match.group(1), match.group(2)) if match else (None, line.strip())
        if not said:
            continue
        n = order.index(who) if who in order else 0
        out.append((said, _VARIANTS[n % len(_VARIANTS)]))
    return out or [(text.strip() or "(silence)", _VARIANTS[0])]


def _espeak(binary: str, words: str, variant: str) -> bytes:
    done = subprocess.run([binary, "--stdout", "-v", f"en+{variant}", "-s", "165", "--", words],
                          capture_output=True, timeout=30, check=True)  # fmt: skip
    return _canonical(done.stdout)


def _canonical(wav: bytes) -> bytes:
    """espeak-ng streams its WAV with unknown lengths in the header: rewrite it with the real ones."""
    with wave.open(io.BytesIO(wav)) as reader:
        params = reader.getparams()
        frames = reader.readframes(reader.getnframes() or 1 << 30)
    return _wav(frames, params.framerate, params.sampwidth, params.nchannels)


def _tones(words: str) -> bytes:
    samples = array.array("h")
    for word in words.split() or ["(silence)"]:
        pitch = 220 + int(hashlib.sha256(word.encode()).hexdigest()[:4], 16) % 440
        for i in range(int(SAMPLE_RATE * 0.16)):
            fade = min(1.0, i / 240, (SAMPLE_RATE * 0.16 - i) / 240)
            samples.append(int(9000 * fade * math.sin(2 * math.pi * pitch * i / SAMPLE_RATE)))
        samples.extend([0] * int(SAMPLE_RATE * 0.06))
    return _wav(samples.tobytes(), SAMPLE_RATE, 2, 1)


def _joined(clips: list[bytes]) -> bytes:
    """One WAV of several (same format), a short pause between speakers."""
    frames, params = [], None
    for clip in clips:
        with wave.open(io.BytesIO(clip)) as reader:
            params = params or reader.getparams()
            frames.append(reader.readframes(reader.getnframes()))
    assert params is not None
    pause = b"\0" * (params.sampwidth * params.nchannels * int(params.framerate * 0.25))
    return _wav(pause.join(frames), params.framerate, params.sampwidth, params.nchannels)


def _wav(frames: bytes, rate: int, width: int, channels: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(width)
        writer.setframerate(rate)
        writer.writeframes(frames)
    return buffer.getvalue()
