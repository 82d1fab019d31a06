"""Requests sent and not yet answered, and a wait until none are: what a drain waits on."""

from __future__ import annotations

import threading
import time


class InFlight:
    """A count of requests in flight; `wait_idle` returns once it is back to zero.

    Thread-safe: requests start on the writers' threads and end on the driver's completion
    thread (or on a delay thread, for an injected answer).
    """

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()  # taken twice per request: a plain lock, not a Condition
        self._idle = threading.Event()  # set by the answer that leaves nothing in flight

    def started(self) -> None:
        """One more request is on its way."""
        with self._lock:
            self._count += 1

    def answered(self) -> None:
        """One request got its answer (or its error)."""
        with self._lock:
            self._count -= 1
            idle = not self._count
        if idle:
            self._idle.set()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is in flight; False if something still is after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while self._count:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._idle.clear()
            if self._count:  # an answer between the check and the clear has set it already
                self._idle.wait(min(left, 0.05))
        return True

    @property
    def count(self) -> int:
        """Requests sent and not answered yet."""
        return self._count
