"""Transcripts from the local server (``transcription_config``), said plainly to be stand-ins.

No local engine can hear (SmolLM2 reads text only), so the scripted transcript is built from what the
recording's container says (its kind, type and length), deterministically, in the shape the API answers
with: the text, and with diarization ``speech_metadata`` annotations that mark each speaker's turn.
"""

from __future__ import annotations

from typing import Any

from .engines.base import EngineRequest

FILLERS = ("um, ", "uh, ")


def transcript(request: EngineRequest) -> tuple[str, list[dict[str, Any]]]:
    """(text, annotations) for the audio and video parts of the last turn."""
    config = request.generation_config.get("transcription_config") or {}
    mode = config.get("mode") or "verbatim"
    kind = mode.get("type", "verbatim") if isinstance(mode, dict) else str(mode)
    by_speaker = isinstance(mode, dict) and mode.get("diarization_mode") == "speaker"
    media = [b for s in request.history[-1:] for b in s.get("content", []) if b.get("type") in ("audio", "video")]
    if not media:
        return "(nothing to transcribe: the request holds no audio or video)", []
    text, annotations = "", []
    for n, block in enumerate(media, 1):
        facts = request.describe_part(block).strip("[]")
        said = [f"This is a stand-in transcript of {facts}: the embedded local server cannot hear.",
                f"Recording {n} would be transcribed {kind} by the API."]  # fmt: skip
        if kind == "verbatim":  # verbatim keeps the hesitations a smart transcript removes
            said = [FILLERS[i % 2] + line[0].lower() + line[1:] for i, line in enumerate(said)]
        for i, line in enumerate(said):
            speaker = f"Speaker {i % 2 + 1}"
            text += f"{speaker}: " if by_speaker else ""
            start = len(text.encode())  # the turn's words, after its label (UTF-8 byte offsets, as the API's)
            text += line + "\n"
            if by_speaker:
                annotations.append({"type": "speech_metadata", "speaker": speaker, "start_index": start,
                                    "end_index": len(text.encode()) - 1})  # fmt: skip
    return text.rstrip("\n"), annotations
