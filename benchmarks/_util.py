"""Shared helpers for the benchmarks: a static loopback SSE server and median timing."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def sse_body(deltas: int, text: str = "tok ") -> bytes:
    """A steps-schema stream with ``deltas`` text deltas, framed as the API frames it."""
    iid = "v1_bench"
    events = [
        {
            "event_type": "interaction.created",
            "interaction": {"id": iid, "object": "interaction", "status": "in_progress", "model": "m"},
        },
        {"event_type": "interaction.status_update", "interaction_id": iid, "status": "in_progress"},
        {"event_type": "step.start", "index": 0, "step": {"type": "model_output"}},
    ]
    events += [
        {"event_type": "step.delta", "index": 0, "delta": {"type": "text", "text": text}}
        for _ in range(deltas)
    ]
    events += [
        {"event_type": "step.stop", "index": 0},
        {"event_type": "interaction.completed",
         "interaction": {"id": iid, "object": "interaction", "status": "completed", "model": "m", "usage": {"total_tokens": deltas}}},
    ]  # fmt: skip
    frames = []
    for n, event in enumerate(events, 1):
        event["event_id"] = f"{iid}:{n}"
        frames.append(f"event: {event['event_type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n")
    return "".join(frames).encode()


class StaticSSEServer:
    """Answers every request with the same SSE bytes, in 16 KiB chunks, on 127.0.0.1."""

    def __init__(self, body: bytes) -> None:
        payload = body

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                for i in range(0, len(payload), 16384):
                    self.wfile.write(payload[i : i + 16384])

            do_POST = do_GET = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _serve(body: bytes, conn: Any) -> None:
    server = StaticSSEServer(body)
    conn.send(server.url)
    conn.recv()  # block until told to stop
    server.stop()


class StaticSSEProcess:
    """The static server in its own process, so it does not share the benchmark's GIL."""

    def __init__(self, body: bytes) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(body, child), daemon=True)
        self._process.start()
        self.url: str = self._conn.recv()

    def stop(self) -> None:
        self._conn.send("stop")
        self._process.join(10)


def interleaved_medians(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Time each contender once per round, round after round; the median per contender."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
