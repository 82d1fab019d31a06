"""Run callbacks later from one thread (injected latency without a thread per request)."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class DelayLine:
    """A single daemon thread that calls each scheduled function at its due time."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Call `fn` after `delay_s` seconds."""
        with self._wake:
            heapq.heappush(self._heap, (time.monotonic() + delay_s, next(self._order), fn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="delay-line", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = None if not self._heap else self._heap[0][0] - time.monotonic()
                    self._wake.wait(timeout)
                _, _, fn = heapq.heappop(self._heap)
            try:
                fn()
            except Exception:  # one failing callback must not stop the line
                log.exception("delayed call failed")
