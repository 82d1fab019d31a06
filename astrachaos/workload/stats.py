"""Write statistics from events: latency histogram (HDR), outcomes per second, throughput."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

from astrachaos.events import DriverOutcome, EventBus, WriteCompleted

_MAX_US = 3_600_000_000  # one hour, in microseconds


@dataclass(frozen=True)
class Latency:
    """Write latency percentiles in milliseconds, from acknowledged statements."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float


_FOLD_AT = 50_000  # distinct latencies waiting before they go into the histogram


class WriteStats:
    """Listens to `WriteCompleted`: records answered per outcome and the acknowledged latency.

    A latency is counted in a dict by its microseconds and goes into the HDR histogram later,
    once per distinct value: the histogram's pure-Python `record_value` would otherwise run once
    per statement on the completion thread.
    """

    def __init__(self) -> None:
        self._histogram = new_histogram()
        self._pending: dict[int, int] = {}  # latency in us -> statements
        self.outcomes: Counter[DriverOutcome] = Counter()
        self._lock = threading.Lock()

    @property
    def histogram(self) -> HdrHistogram:
        """Every acknowledged statement's latency so far, in microseconds."""
        with self._lock:
            self._fold_locked()
            return self._histogram

    def subscribe(self, bus: EventBus) -> None:
        """Start listening on `bus`."""
        bus.subscribe(WriteCompleted, self.on_completed)

    def on_completed(self, event: WriteCompleted) -> None:
        """Account for one answered (or refused) statement."""
        with self._lock:
            self.outcomes[event.outcome] += len(event.record_ids)
            if event.outcome is DriverOutcome.ACKED:
                pending = self._pending
                us = (event.completed_ns - event.submitted_ns) // 1000
                pending[us] = pending.get(us, 0) + 1
                if len(pending) >= _FOLD_AT:
                    self._fold_locked()

    def latency(self) -> Latency:
        """Percentiles of acknowledged statements, in ms."""
        with self._lock:
            self._fold_locked()
            return latency_of(self._histogram)

    def _fold_locked(self) -> None:
        histogram = self._histogram
        for us, count in self._pending.items():
            histogram.record_value(min(max(1, us), _MAX_US), count)
        self._pending.clear()


def new_histogram() -> HdrHistogram:
    """A latency histogram in microseconds, 1 µs to an hour, 3 significant digits."""
    return HdrHistogram(1, _MAX_US, 3)


def record_latency(histogram: HdrHistogram, submitted_ns: int, completed_ns: int) -> None:
    """Record one latency, clamped to the histogram's range."""
    histogram.record_value(min(max(1, (completed_ns - submitted_ns) // 1000), _MAX_US))


def latency_of(h: HdrHistogram) -> Latency:
    """Percentiles of a microsecond histogram, in ms."""
    if h.get_total_count() == 0:
        return Latency(0, 0.0, 0.0, 0.0, 0.0)
    return Latency(
        count=h.get_total_count(),
        p50=h.get_value_at_percentile(50) / 1000,
        p95=h.get_value_at_percentile(95) / 1000,
        p99=h.get_value_at_percentile(99) / 1000,
        max=h.get_max_value() / 1000,
    )
