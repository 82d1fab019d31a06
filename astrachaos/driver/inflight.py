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
        self._idle = threading.Condition()

    def started(self) -> None:
        """One more request is on its way."""
        with self._idle:
            self._count += 1

    def answered(self) -> None:
        """One request got its answer (or its error)."""
        with self._idle:
            self._count -= 1
            if self._count == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is in flight; False if something still is after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    @property
    def count(self) -> int:
        """Requests sent and not answered yet."""
        return self._count
