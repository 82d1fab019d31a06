"""`careful`: await every result, retry retryable errors with backoff, log success on ack, drain."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Sequence
from typing import Any

from astrachaos.patterns.interface import PatternContext
from astrachaos.workload.plan import PlannedRecord


class _BatchProgress:
    """Collects a batch's settled statements; logs one line per outcome once all are settled."""

    def __init__(self, ctx: PatternContext, batch_no: int, statements: int) -> None:
        self._ctx = ctx
        self._batch_no = batch_no
        self._left = statements
        self._stored: list[PlannedRecord] = []
        self._failed: dict[str, list[PlannedRecord]] = {}
        self._lock = threading.Lock()

    def settled(self, group: Sequence[PlannedRecord], error: BaseException | None) -> None:
        """One statement is acknowledged, or has failed for good."""
        with self._lock:
            if error is None:
                self._stored.extend(group)
            else:
                self._failed.setdefault(type(error).__name__, []).extend(group)
            self._left -= 1
            if self._left:
                return
        where: dict[str, Any] = {"batch": self._batch_no, "writer": self._ctx.writer}
        if self._stored:
            self._ctx.log.success(self._stored, "batch stored", **where)
        for error_class, records in self._failed.items():
            self._ctx.log.failure(records, "write failed after retries", error=error_class, **where)


class _Window:
    """At most `size` statements unanswered. A writer that finds the window full sleeps until a
    `refill`'s worth of slots is free, not one: a wakeup per `refill` answers, not per answer."""

    def __init__(self, size: int, refill: int) -> None:
        self._free = size
        self._refill = min(size, max(1, refill))
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._waiting = False

    def take(self) -> None:
        """Take a slot, waiting while none is free."""
        with self._lock:
            if not self._free:
                self._waiting = True
                while self._free < self._refill:
                    self._room.wait()
                self._waiting = False
            self._free -= 1

    def give(self) -> None:
        """Return a slot (an answer came)."""
        with self._lock:
            self._free += 1
            if self._waiting and self._free >= self._refill:
                self._room.notify()


class Careful:
    """The application done right: bounded in-flight writes (backpressure) and honest logging."""

    def __init__(self, ctx: PatternContext) -> None:
        self._ctx = ctx
        self._slots = _Window(ctx.spec.max_in_flight, ctx.spec.max_in_flight // 8)
        self._retries: list[tuple[float, int, Sequence[PlannedRecord], int, _BatchProgress]] = []
        self._order = itertools.count()
        self._pending = 0
        self._mutex = threading.Lock()  # taken per statement: a plain lock, not the Condition
        self._lock = threading.Condition(self._mutex)  # shutdown waits here for the last answer

    def write(self, batch: Sequence[PlannedRecord], batch_no: int) -> None:
        """Send every statement of the batch, never more than `max_in_flight` unanswered."""
        groups = self._ctx.channel.groups(batch)
        progress = _BatchProgress(self._ctx, batch_no, len(groups))
        for group in groups:
            self._run_due_retries()
            self._send(group, 1, progress)

    def shutdown(self) -> None:
        """Drain: wait until every statement is acknowledged or has failed for good."""
        while True:
            self._run_due_retries()
            with self._lock:
                if self._pending == 0:
                    return
                self._lock.wait(0.01)

    def _send(self, group: Sequence[PlannedRecord], attempt: int, progress: _BatchProgress) -> None:
        self._slots.take()
        with self._mutex:
            self._pending += 1
        self._ctx.channel.submit(
            group, attempt, lambda error: self._answered(error, group, attempt, progress)
        )

    def _answered(
        self,
        error: BaseException | None,
        group: Sequence[PlannedRecord],
        attempt: int,
        progress: _BatchProgress,
    ) -> None:
        self._slots.give()
        retry = (
            error is not None
            and attempt < self._ctx.spec.max_attempts
            and self._ctx.is_retryable(error)
        )
        if retry:
            due = time.monotonic() + self._ctx.retry_delay_s(attempt)
            with self._mutex:
                heapq.heappush(
                    self._retries, (due, next(self._order), group, attempt + 1, progress)
                )
            return  # still pending, now as a retry
        progress.settled(group, error)
        with self._mutex:
            self._pending -= 1
            if not self._pending:
                self._lock.notify_all()

    def _run_due_retries(self) -> None:
        while self._retries:  # read without the lock: a retry queued meanwhile waits a statement
            with self._mutex:
                if not self._retries or self._retries[0][0] > time.monotonic():
                    return
                _, _, group, attempt, progress = heapq.heappop(self._retries)
                self._pending -= 1
            self._send(group, attempt, progress)
