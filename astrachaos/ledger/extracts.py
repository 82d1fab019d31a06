"""Typed extracts of a ledger for the reports: per-second series, and acknowledged latencies.

The reports render these; only this module reads the ledger for them.
"""

from __future__ import annotations

from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from astrachaos.events import DriverOutcome, FaultWindow
from astrachaos.ledger.writer import Ledger, LedgerRecord

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Timeline:
    """What happened in each second of the write phase (second 0 = the phase's start)."""

    seconds: list[int]
    acked: list[int]  # records acknowledged in that second
    by_outcome: dict[str, list[int]]  # driver outcome -> records answered in that second
    by_error: dict[str, list[int]]  # last error class -> records answered in that second
    p50_ms: list[float | None]  # of records acknowledged in that second; None: none were
    p99_ms: list[float | None]
    windows: list[FaultWindow]
    origin_ns: int  # monotonic ns of second 0

    def seconds_of(self, window: FaultWindow) -> tuple[float, float | None]:
        """When `window` started and ended, in seconds of this timeline (None: never closed)."""
        end = None if window.end_ns is None else (window.end_ns - self.origin_ns) / _NS_PER_S
        return (window.start_ns - self.origin_ns) / _NS_PER_S, end


def acked_latencies(records: Iterable[LedgerRecord]) -> Iterable[tuple[int, int]]:
    """(completed_ns, latency_ns) of every acknowledged record, from first submit to last answer."""
    for r in records:
        done, sent = r.completed_ns, r.submitted_ns
        if r.outcome is DriverOutcome.ACKED and done is not None and sent is not None:
            yield done, max(0, done - sent)


def phase_origin_ns(ledger: Ledger) -> int | None:
    """When the write phase started (monotonic ns, as the ledger's times), if recorded."""
    value = ledger.meta().get("started_ns", "")
    return int(value) if value.isdigit() else None


@dataclass(frozen=True)
class LatencyLog:
    """What an HdrHistogram log of a run needs: acknowledged latencies and the fault windows."""

    latencies: list[tuple[int, int]]  # (completed_ns, latency_ns) of each acknowledged record
    windows: list[FaultWindow]
    origin_ns: int | None  # start of the write phase (monotonic ns); None in old ledgers
    started_at: str  # wall clock of the run's start, ISO 8601 ("" when unknown)


@dataclass(frozen=True)
class LedgerExtracts:
    """Everything the reports take from a ledger, read in one pass."""

    timeline: Timeline
    latency_log: LatencyLog


def extracts_of(ledger: Ledger) -> LedgerExtracts:
    """Read every record of the ledger once; the timeline and the latency log of the run."""
    records = list(_answered(ledger.iter_records()))
    windows = ledger.fault_windows()
    origin = phase_origin_ns(ledger)
    latency_log = LatencyLog(
        latencies=list(acked_latencies(r for r, _ in records)),
        windows=windows,
        origin_ns=origin,
        started_at=ledger.meta().get("started_at", ""),
    )
    return LedgerExtracts(_timeline(records, windows, origin), latency_log)


def build_timeline(ledger: Ledger) -> Timeline:
    """Read every record of the ledger once and bucket it by the second it was answered in."""
    return extracts_of(ledger).timeline


def _timeline(
    records: list[tuple[LedgerRecord, int]], windows: list[FaultWindow], origin: int | None
) -> Timeline:
    if origin is None:  # a ledger from before `started_ns` was recorded
        origin = min((r.submitted_ns or done for r, done in records), default=0)
    outcomes: defaultdict[int, Counter[str]] = defaultdict(Counter)
    errors: defaultdict[int, Counter[str]] = defaultdict(Counter)
    latencies: defaultdict[int, array[int]] = defaultdict(lambda: array("q"))
    for record, completed_ns in records:
        second = max(0, (completed_ns - origin) // _NS_PER_S)
        outcomes[second][record.outcome.value if record.outcome else "none"] += 1
        if record.error_class:
            errors[second][record.error_class] += 1
    for completed_ns, latency_ns in acked_latencies(r for r, _ in records):
        latencies[max(0, (completed_ns - origin) // _NS_PER_S)].append(latency_ns)
    last = max(outcomes, default=-1)
    seconds = list(range(last + 1))
    pcts = [_percentiles(latencies.get(s)) for s in seconds]
    return Timeline(
        seconds=seconds,
        acked=[outcomes[s][DriverOutcome.ACKED.value] for s in seconds],
        by_outcome=_series(outcomes, seconds),
        by_error=_series(errors, seconds),
        p50_ms=[p50 for p50, _ in pcts],
        p99_ms=[p99 for _, p99 in pcts],
        windows=windows,
        origin_ns=origin,
    )


def _answered(records: Iterable[LedgerRecord]) -> Iterable[tuple[LedgerRecord, int]]:
    for r in records:
        if r.completed_ns is not None:
            yield r, r.completed_ns


def _series(counts: dict[int, Counter[str]], seconds: list[int]) -> dict[str, list[int]]:
    names = sorted({name for counter in counts.values() for name in counter})
    return {name: [counts[s][name] if s in counts else 0 for s in seconds] for name in names}


def _percentiles(values: array[int] | None) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    ordered = sorted(values)
    return _nearest_rank(ordered, 50) / 1e6, _nearest_rank(ordered, 99) / 1e6


def _nearest_rank(ordered: list[int], pct: float) -> int:
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]
