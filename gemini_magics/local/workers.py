"""Daemon threads for the engines' runs, reused while there is work.

One new thread per interaction made the server's event loop wait for each thread to start (a GIL hand-off
every time: a third of the loop's time at a few hundred requests a second). Here a run is queued, an idle
worker takes it, and a new worker starts only when none is idle. Workers are daemons (a stalled run never
holds up the process's exit) and leave after a minute without work.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

IDLE_SECONDS = 60.0


class Workers:
    def __init__(self, name: str = "engine", idle_seconds: float = IDLE_SECONDS) -> None:
        self._name = name
        self._idle_seconds = idle_seconds
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._started = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if spawn:
                self._started += 1
            else:
                self._idle -= 1  # claimed: the next submit does not count on this worker
        self._jobs.put(job)
        if spawn:
            threading.Thread(target=self._work, daemon=True, name=f"{self._name}-{self._started}").start()

    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # nobody claimed this worker meanwhile: it may leave
                        self._idle -= 1
                        return
                continue  # claimed just now: its job is on the way
            job()
            with self._lock:
                self._idle += 1
