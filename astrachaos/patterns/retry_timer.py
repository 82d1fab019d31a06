"""Delayed retries for a pattern: one thread and a heap of due times, not a timer thread each.

A retry-forever application under overload can have thousands of retries pending; a thread per
retry makes the process itself the bottleneck. Here every pending retry is one heap entry, run in
due order on one thread, and `cancel_all` drops the pending ones in one step (at shutdown).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class RetryTimer:
    """Runs callbacks after their delay, in due order, on one daemon thread."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> bool:
        """Run `callback` after `delay_s`; False (and nothing scheduled) once cancelled."""
        with self._wake:
            if self._closed:
                return False
            heapq.heappush(self._heap, (time.monotonic() + delay_s, next(self._order), callback))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._wake.notify()
            return True

    @property
    def pending(self) -> int:
        """Callbacks scheduled and not run yet."""
        with self._wake:
            return len(self._heap)

    def cancel_all(self) -> int:
        """Drop every pending callback, accept no new one, stop the thread; return how many."""
        with self._wake:
            self._closed = True
            dropped = len(self._heap)
            self._heap.clear()
            self._wake.notify()
        return dropped

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._wake.wait(timeout)
                if self._closed:
                    return
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except Exception:  # one failed retry must not end every later one
                log.exception("a delayed retry failed")
