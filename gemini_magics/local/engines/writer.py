"""How an engine writes one request's steps: text in chunks, thoughts, images, calls and tool pairs,
paced as the request's scripted headers ask and stopped at once by a cancel. Shared by the engines and
the agents (per request, never on a shared engine)."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..._constants import LOCAL_NOTE_FIELD

if TYPE_CHECKING:
    from ..store import Record
    from .base import EngineRequest

__all__ = ["StepWriter", "LOCAL_NOTE_FIELD", "draw_png", "split_into", "word_chunks"]



def split_into(text: str, pieces: int) -> list[str]:
    """``text`` in exactly ``pieces`` chunks; padded with numbered filler words when it is too short."""
    if pieces <= 0:
        return [text]
    if len(text) < pieces:
        filler = " ".join(f"w{i}" for i in range(pieces))
        text = f"{text} {filler}"
    size, extra = divmod(len(text), pieces)
    chunks, start = [], 0
    for i in range(pieces):
        end = start + size + (1 if i < extra else 0)
        chunks.append(text[start:end])
        start = end
    return chunks


def word_chunks(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text) or [text]


def draw_png(prompt: str, size: tuple[int, int] = (320, 200), mime_type: str = "image/png") -> bytes:
    """A labelled stand-in picture of ``prompt``, encoded as ``mime_type`` (PNG or JPEG)."""
    from PIL import Image, ImageDraw

    digest = hashlib.sha256(prompt.encode()).digest()
    background = (64 + digest[0] // 2, 64 + digest[1] // 2, 96 + digest[2] // 3)
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    draw.rectangle([8, 8, size[0] - 9, size[1] - 9], outline=(255, 255, 255), width=2)
    words, lines, line = prompt.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > 36:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    for i, text in enumerate(lines[:8]):
        draw.text((20, 20 + 18 * i), text, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="JPEG" if mime_type == "image/jpeg" else "PNG", quality=90)
    return out.getvalue()


class StepWriter:
    """Writes one request's steps into its record, paced as its headers ask.

    Per request, never on the shared engine: concurrent requests may ask for different pacing.
    """

    def __init__(self, record: Record, *, delay: float = 0.0, pieces: int | None = None) -> None:
        self.record = record
        self.delay = delay
        self.pieces = pieces
        self.token_limit: int | None = None
        """Text chunks (the engine's tokens) an answer may have; past it the answer is cut."""
        self.cut = False
        self.hops = 0
        """Hops still to come (``X-Scripted-Continuation: N``): the text is handed back in N + 1 parts, each
        interaction but the last ending ``requires_continuation``."""

    def ending(self) -> str:
        """The status to finish with: ``requires_continuation`` when text is left for a next hop,
        ``incomplete`` (and why) when the token limit cut the answer."""
        if self.record.continuation is not None:
            return "requires_continuation"
        if not self.cut:
            return "completed"
        self.record.incomplete_details = {
            "reason": "max_output_tokens",
            "max_output_tokens": self.token_limit,
        }
        return "incomplete"

    def refusal(self, code: str = "prohibited_content") -> str:
        """A generation blocked by the safety system: an error, and the interaction ends ``failed``."""
        error = {"code": code, "message": "the response was blocked: it may contain prohibited content"}
        self.record.errors.append(error)
        self.record.emit({"event_type": "error", "error": error})
        return "failed"

    @classmethod
    def for_request(cls, record: Record, headers: Mapping[str, str]) -> StepWriter:
        deltas = headers.get("x-scripted-deltas")
        delay_ms = int(headers.get("x-scripted-delay-ms", "0") or 0)
        writer = cls(record, delay=delay_ms / 1000.0, pieces=int(deltas) if deltas else None)
        writer.hops = int(headers.get("x-scripted-continuation", "0") or 0)
        return writer

    def pace(self, seconds: float | None = None) -> None:
        """Wait ``seconds`` (default: the per-delta delay), stopping at once if the interaction is cancelled."""
        record = self.record
        record.check_cancelled()
        delay = self.delay if seconds is None else seconds
        if not record.watched:
            record.owed += delay  # nobody sees the deltas arrive: the response waits the total out (Record.owed)
        elif delay and record.cancel_requested.wait(delay):  # one wake-up: the delay's end, or a cancel at once
            record.check_cancelled()

    def text(self, text: str, annotations: list[dict[str, Any]] | None = None) -> None:
        """The answer's text, in deltas; ``annotations`` (citations) follow it in a ``text_annotation_delta``."""
        record = self.record
        chunks = split_into(text, self.pieces) if self.pieces else word_chunks(text)
        if self.token_limit is not None and len(chunks) > self.token_limit:
            chunks, self.cut = chunks[: self.token_limit], True
        if self.hops > 0 and len(chunks) > 1:  # this hop's share; the rest waits for the continuation token
            share = max(1, len(chunks) // (self.hops + 1))
            chunks, rest = chunks[:share], chunks[share:]
            record.continuation = ("".join(rest), self.hops - 1)
        record.begin_step({"type": "model_output"})
        for chunk in chunks:
            self.pace()
            record.delta({"type": "text", "text": chunk})
        whole = "".join(chunks)
        kept = [a for a in annotations or [] if a["end_index"] <= len(whole.encode())]  # a cut answer cites what it kept
        if kept:
            record.delta({"type": "text_annotation_delta", "annotations": kept})
        block = {"type": "text", "text": whole, **({"annotations": kept} if kept else {})}
        record.end_step({"type": "model_output", "content": [block]})
        record.add_usage(output_tokens=len(chunks))

    def thought(self, prompt: str) -> None:
        record = self.record
        summary = f"Thinking about the request: {prompt.strip()[:120]}"
        signature = base64.b64encode(hashlib.sha256(prompt.encode()).digest()[:12]).decode()
        record.begin_step({"type": "thought"})
        for chunk in word_chunks(summary):
            self.pace()
            record.delta({"type": "thought_summary", "content": {"type": "text", "text": chunk}})
        record.delta({"type": "thought_signature", "signature": signature})
        record.end_step(
            {"type": "thought", "signature": signature, "summary": [{"type": "text", "text": summary}]}
        )
        record.add_usage(thought_tokens=len(summary.split()))

    def _media(self, block: dict[str, Any], data: bytes, pieces: int, note: str = "") -> None:
        """A media answer (image, audio, video) as the API streams one: one step, its base64 ``data`` in
        ``pieces`` deltas (joined by the client), ``note`` (what the local server did) on the last delta and
        on the step's block."""
        record = self.record
        encoded = base64.b64encode(data).decode()
        size = len(encoded) // pieces // 4 * 4  # cut at whole base64 quanta; the last piece takes the rest
        cuts = [k * size for k in range(pieces)] + [len(encoded)]
        chunks = [encoded[a:b] for a, b in itertools.pairwise(cuts) if b > a]
        extra = {LOCAL_NOTE_FIELD: note} if note else {}
        record.begin_step({"type": "model_output"})
        for n, chunk in enumerate(chunks):
            self.pace()
            record.delta({**block, "data": chunk, **(extra if n == len(chunks) - 1 else {})})
        record.end_step({"type": "model_output", "content": [{**block, "data": encoded, **extra}]})

    def image(self, prompt: str, size: tuple[int, int] = (320, 200), mime_type: str = "image/png", *,
              stand_in: str = "") -> None:  # fmt: skip
        """A drawn picture of the prompt; ``stand_in`` (why the engine could not paint it) goes in the image's
        namespaced extension field, so the result says a local stand-in was drawn."""
        # media arrives in chunks on the real API too; two here, so joining is exercised
        self._media({"type": "image", "mime_type": mime_type}, draw_png(prompt, size, mime_type), 2, stand_in)
        self.record.add_usage(output_tokens=258, modality="image")

    def audio(self, text: str, voices: dict[str, str]) -> None:
        """``text`` spoken (by a synthesizer on this machine, or a synthetic signal), as a WAV answer streamed
        in chunks; speakers (``voices`` with names) get a voice each; the local note says what spoke."""
        from ..speech import speak

        speech = speak(text, {who: voice for who, voice in voices.items() if who})
        block = {"type": "audio", "mime_type": "audio/wav", "sample_rate": speech.sample_rate, "channels": 1}
        self._media(block, speech.wav, 3, speech.how)
        self.record.add_usage(output_tokens=max(1, round(speech.seconds * 25)), modality="audio")  # ~25 tokens a second

    def speech(self, request: EngineRequest, prompt: str) -> None:
        """What a speech request gets: a transcript of the recordings given (a stand-in, said plainly: no local
        engine hears), or the prompt read aloud, as the API's text-to-speech models do."""
        if request.generation_config.get("transcription_config"):
            from ..transcripts import transcript

            text, speakers = transcript(request)
            self.text(text, annotations=speakers)
        else:
            self.audio(prompt, request.speech_voices())

    def video(self, prompt: str, shape: dict[str, Any], first_frame: bytes | None) -> str:
        """A generated video (a playable WebM the local server draws), delivered inline in two chunks; the
        status to end with (``failed``, and why, when PyAV is missing)."""
        from ..video import make_video

        seconds = int(str(shape.get("duration") or "4").rstrip("s") or 4)
        try:
            webm = make_video(prompt, seconds=seconds, aspect_ratio=str(shape.get("aspect_ratio") or "16:9"),
                              resolution=str(shape.get("resolution") or "720p"), first_frame=first_frame)  # fmt: skip
        except ImportError:
            error = {"code": "unimplemented", "message": "the local server makes videos with PyAV: pip install 'gemini-magics[local]'"}
            self.record.errors.append(error)
            self.record.emit({"event_type": "error", "error": error})
            return "failed"
        drawn = "over the image given" if first_frame else "over a moving band"
        self._media({"type": "video", "mime_type": "video/webm"}, webm, 2,
                    f"a stand-in video drawn by the embedded local server (the prompt's words {drawn})")  # fmt: skip
        self.record.add_usage(output_tokens=seconds * 258, modality="video")
        return "completed"

    def function_call(self, call: dict[str, Any]) -> None:
        record = self.record
        call_id = "call_" + hashlib.sha256(json.dumps(call, sort_keys=True).encode()).hexdigest()[:10]
        arguments = json.dumps(call["arguments"])
        record.begin_step({"type": "function_call", "id": call_id, "name": call["name"], "arguments": {}})
        cut = max(1, len(arguments) // 2)
        for piece in (arguments[:cut], arguments[cut:]):
            self.pace()
            record.delta({"type": "arguments_delta", "arguments": piece})
        record.end_step(
            {"type": "function_call", "id": call_id, "name": call["name"], "arguments": call["arguments"]}
        )
        record.add_usage(output_tokens=len(arguments.split()) + 2)

    def step(self, step: dict[str, Any]) -> None:
        """A whole step (a tool call or result), paced like a delta."""
        self.record.begin_step(step)
        self.pace()
        self.record.end_step(step)

    def tool_pair(
        self, kind: str, arguments: dict[str, Any], result: Any, *, is_error: bool = False, local_note: str = ""
    ) -> None:
        """A built-in tool's call and result; ``local_note`` (what ran on this machine, and how) goes in the
        result's namespaced extension field, for the card."""
        record = self.record
        call_id = f"{kind}_{len(record.steps)}"
        answer: dict[str, Any] = {"type": f"{kind}_result", "call_id": call_id, "result": result, "is_error": is_error}
        if local_note:
            answer[LOCAL_NOTE_FIELD] = local_note
        call = {"type": f"{kind}_call", "id": call_id, "arguments": arguments}
        # as the SDK types carry them: the step opens with its ids, its payload comes in a *_call / *_result delta
        for step, payload in ((call, {"arguments": arguments}), (answer, {k: v for k, v in answer.items() if k != "call_id"})):
            record.begin_step({k: v for k, v in step.items() if k not in payload or k == "type"})
            self.pace()
            record.delta({"type": step["type"], **{k: v for k, v in payload.items() if k != "type"}})
            record.end_step(step)
        record.add_usage(tool_use_tokens=len(json.dumps(result).split()), grounding=kind)
