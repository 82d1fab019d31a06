"""Dual write: one application write goes to two targets, by one of three strategies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from astrachaos.events import AppLogged, EventBus, PartitionsPrinted, RecordsPlanned
from astrachaos.scenario import DualWrite
from astrachaos.workload.channel import WriteChannel
from astrachaos.workload.plan import PlannedRecord


def mirror(primary: EventBus, secondary: EventBus) -> None:
    """What the workload plans and the app logs concerns both targets' ledgers."""
    primary.subscribe(RecordsPlanned, secondary.publish)
    primary.subscribe(AppLogged, secondary.publish)
    primary.subscribe(PartitionsPrinted, secondary.publish)


class DualChannel:
    """Looks like one WriteChannel to the application; writes to both targets underneath."""

    def __init__(self, primary: WriteChannel, secondary: WriteChannel, strategy: DualWrite) -> None:
        self.primary = primary
        self.secondary = secondary
        self.strategy = strategy
        self.corruptions = primary.corruptions
        secondary.corruptions = primary.corruptions

    def groups(self, batch: Sequence[PlannedRecord]) -> list[Sequence[PlannedRecord]]:
        """The statements a batch becomes (the same on both sides)."""
        return self.primary.groups(batch)

    def send(self, group: Sequence[PlannedRecord], attempt: int = 1) -> Future[None]:
        """One application write: its future follows the strategy."""
        match self.strategy:
            case DualWrite.SYNC_BOTH:
                return _both(self.primary.send(group, attempt), self.secondary.send(group, attempt))
            case DualWrite.PRIMARY_THEN_ASYNC_SECONDARY:
                first = self.primary.send(group, attempt)
                first.add_done_callback(
                    lambda f: None if f.exception() else self.secondary.send(group, attempt)
                )
                return first
            case DualWrite.BEST_EFFORT_SECONDARY:
                self.secondary.send(group, attempt)
                return self.primary.send(group, attempt)

    def submit(
        self, group: Sequence[PlannedRecord], attempt: int, on_done: Callable[[BaseException | None], None]
    ) -> None:
        """One application write, told by callback (follows the strategy like `send`)."""
        self.send(group, attempt).add_done_callback(lambda f: on_done(f.exception()))

    def wait_idle(self, timeout_s: float) -> bool:
        """Both sides have answered everything (the async secondary included)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            left = max(0.0, deadline - time.monotonic())
            if self.primary.wait_idle(left) and self.secondary.wait_idle(left):
                time.sleep(0.05)  # a primary answer may be about to start its secondary write
                if self.in_flight == 0:
                    return True
        return self.in_flight == 0

    @property
    def in_flight(self) -> int:
        """Statements unanswered on either side."""
        return self.primary.in_flight + self.secondary.in_flight


def _both(primary: Future[None], secondary: Future[None]) -> Future[None]:
    """Done when both are; fails with the primary's error, else the secondary's."""
    combined: Future[None] = Future()
    left = [2]
    lock = threading.Lock()

    def one_done(_: Future[None]) -> None:
        with lock:
            left[0] -= 1
            if left[0]:
                return
        error = primary.exception() or secondary.exception()
        if error is None:
            combined.set_result(None)
        else:
            combined.set_exception(error)

    primary.add_done_callback(one_done)
    secondary.add_done_callback(one_done)
    return combined
