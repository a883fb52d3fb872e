"""What the local engines can tell about media they cannot watch or hear: a duration, from its container.

MP4 and QuickTime (the ``mvhd`` box), WebM/Matroska (the ``Info`` element's ``Duration``) and AVI (the
``avih`` header), and WAV. Only the headers are read; a file it cannot parse simply has no known duration.
"""

from __future__ import annotations

import struct


def duration_seconds(data: bytes, mime: str) -> float | None:
    try:
        if data[4:8] == b"ftyp" or mime in ("video/mp4", "video/mov", "video/3gpp"):
            return _mp4(data)
        if data[:4] == b"\x1a\x45\xdf\xa3":
            return _ebml(data)
        if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
            return _avi(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
            return _wav(data)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the ISO-BMFF boxes in ``data[start:end]``."""
    found = []
    position = start
    while position + 8 <= end:
        size, kind = struct.unpack(">I4s", data[position : position + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[position + 8 : position + 16])[0]
            header = 16
        elif size == 0:
            size = end - position
        if size < header:
            break
        found.append((kind, position + header, min(position + size, end)))
        position += size
    return found


def _mp4(data: bytes) -> float | None:
    for kind, start, end in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for inner, body, _ in _boxes(data, start, end):
            if inner == b"mvhd":
                if data[body] == 1:
                    timescale, duration = struct.unpack(">IQ", data[body + 20 : body + 32])
                else:
                    timescale, duration = struct.unpack(">II", data[body + 12 : body + 20])
                return duration / timescale if timescale else None
    return None


def _vint(data: bytes, position: int, *, keep_marker: bool) -> tuple[int, int]:
    first = data[position]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[position + 1 : position + length]:
        value = (value << 8) | byte
    return value, position + length


def _ebml(data: bytes) -> float | None:
    position, scale = 0, 1_000_000
    while position < len(data):
        element, position = _vint(data, position, keep_marker=True)
        size, position = _vint(data, position, keep_marker=False)
        if element in (0x18538067, 0x1549A966):  # Segment, Info: step inside
            continue
        payload = data[position : position + size]
        if element == 0x2AD7B1:  # TimecodeScale, nanoseconds
            scale = int.from_bytes(payload, "big")
        elif element == 0x4489:  # Duration, in timecode units
            units = struct.unpack(">f" if size == 4 else ">d", payload)[0]
            return float(units) * scale / 1e9
        position += size
    return None


def _avi(data: bytes) -> float | None:
    at = data.find(b"avih")
    if at < 0:
        return None
    (microseconds_per_frame,) = struct.unpack("<I", data[at + 8 : at + 12])
    (frames,) = struct.unpack("<I", data[at + 24 : at + 28])
    return float(frames * microseconds_per_frame) / 1e6


def _wav(data: bytes) -> float | None:
    import io
    import wave

    try:
        with wave.open(io.BytesIO(data)) as reader:
            return float(reader.getnframes()) / float(reader.getframerate())
    except (wave.Error, EOFError):
        return None
