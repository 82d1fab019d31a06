"""When each injector is on: a thread that applies and rolls back faults on their schedules."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from astrachaos.events import FaultWindow
from astrachaos.scenario import Schedule

log = logging.getLogger(__name__)
_TICK_S = 0.01


def active_at(schedule: Schedule, elapsed_s: float) -> bool:
    """Whether the schedule's window (not its toggling) covers `elapsed_s` into the write phase."""
    if elapsed_s < schedule.start_s:
        return False
    since = elapsed_s - schedule.start_s
    if schedule.repeat_s:
        since %= schedule.repeat_s
    return schedule.duration_s is None or since < schedule.duration_s


class ScheduledFault:
    """One injector under its schedule; remembers whether it is applied and its windows."""

    def __init__(
        self,
        name: str,
        apply: Callable[[], None],
        rollback: Callable[[], None],
        schedule: Schedule,
        rng: random.Random,
        on_window: Callable[[FaultWindow], None],
        kind: str = "",
    ) -> None:
        self.name = name
        self._apply = apply
        self._rollback = rollback
        self.schedule = schedule
        self._rng = rng
        self._on_window = on_window
        self.applied = False
        self.kind = kind
        self.windows: list[FaultWindow] = []
        self._toggle_on = True
        self._next_toggle_s = 0.0

    def tick(self, elapsed_s: float) -> None:
        """Bring the fault to the state the schedule wants at `elapsed_s`."""
        want = active_at(self.schedule, elapsed_s) and self._toggled(elapsed_s)
        if want and not self.applied:
            self._apply()
            self.applied = True
            self.windows.append(FaultWindow(self.name, self.kind, time.monotonic_ns()))
            self._on_window(self.windows[-1])
        elif not want and self.applied:
            self.end()

    def end(self) -> None:
        """Roll back if applied (idempotent); close the open window."""
        if not self.applied:
            return
        self._rollback()
        self.applied = False
        self.windows[-1] = self.windows[-1].ended(time.monotonic_ns())
        self._on_window(self.windows[-1])

    def _toggled(self, elapsed_s: float) -> bool:
        bounds = self.schedule.toggle_ms
        if bounds is None:
            return True
        if elapsed_s >= self._next_toggle_s:
            self._toggle_on = not self._toggle_on if self._next_toggle_s else True
            low, high = bounds
            self._next_toggle_s = elapsed_s + self._rng.uniform(low, high) / 1000
        return self._toggle_on


class Scheduler:
    """Drives every scheduled fault from one thread until stopped."""

    def __init__(self, faults: list[ScheduledFault]) -> None:
        self._faults = faults
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        """Begin the schedule now (the write phase starts)."""
        began = time.monotonic()

        def loop() -> None:
            try:
                while not self._stop.is_set():
                    elapsed = time.monotonic() - began
                    for fault in self._faults:
                        fault.tick(elapsed)
                    self._stop.wait(_TICK_S)
            except BaseException as error:  # an injector that cannot apply ends the schedule
                log.exception("fault schedule failed")
                self.error = error

        if self._faults:
            self._thread = threading.Thread(target=loop, name="fault-schedule", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop changing faults (rollback is the caller's, in reverse order)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
