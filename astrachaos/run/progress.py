"""Live counters of a run for a progress display, fed by events (no Rich here)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass

from astrachaos.events import EventBus, FaultsActive, PhaseStarted, WriteCompleted


@dataclass(frozen=True)
class ProgressSnapshot:
    """What a progress display shows at one moment."""

    phase: str
    answered: int
    planned_total: int
    acked: int
    rate_per_s: float
    by_error: dict[str, int]
    dropped: int
    elapsed_s: float
    eta_s: float | None
    active_faults: tuple[str, ...]


class RunProgress:
    """Counts answered records by outcome and error; safe to read from another thread."""

    def __init__(self, planned_total: int) -> None:
        self.planned_total = planned_total
        self.phase = "starting"
        self.active_faults: tuple[str, ...] = ()
        self._answered = 0
        self._acked = 0
        self._dropped = 0
        self._errors: Counter[str] = Counter()
        self._began = time.monotonic()
        self._lock = threading.Lock()

    def subscribe(self, bus: EventBus) -> None:
        """Listen to a run's events (its phases, its faults, the writes' answers)."""
        bus.subscribe(WriteCompleted, self._on_completed)
        bus.subscribe(PhaseStarted, self._on_phase)
        bus.subscribe(FaultsActive, self._on_faults)

    def _on_phase(self, event: PhaseStarted) -> None:
        self.phase = event.phase

    def _on_faults(self, event: FaultsActive) -> None:
        self.active_faults = event.names

    def _on_completed(self, event: WriteCompleted) -> None:
        n = len(event.record_ids)
        with self._lock:
            self._answered += n
            if event.outcome.value == "acked":
                self._acked += n
            elif event.outcome.value == "dropped":
                self._dropped += n
            if event.error_class:
                self._errors[event.error_class] += n

    def add(self, answered: int, acked: int, dropped: int, errors: dict[str, int]) -> None:
        """Counts answered elsewhere (a writer process), added to this run's."""
        with self._lock:
            self._answered += answered
            self._acked += acked
            self._dropped += dropped
            self._errors.update(errors)

    def snapshot(self) -> ProgressSnapshot:
        """The counters now (answered counts every attempt, so retries can exceed the total)."""
        with self._lock:
            elapsed = time.monotonic() - self._began
            rate = self._answered / elapsed if elapsed > 0 else 0.0
            left = max(0, self.planned_total - self._acked - self._dropped)
            eta = left / rate if rate > 0 and self.phase == "writing" else None
            return ProgressSnapshot(
                phase=self.phase,
                answered=self._answered,
                planned_total=self.planned_total,
                acked=self._acked,
                rate_per_s=rate,
                by_error=dict(self._errors.most_common(5)),
                dropped=self._dropped,
                elapsed_s=elapsed,
                eta_s=eta,
                active_faults=self.active_faults,
            )
