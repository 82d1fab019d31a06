"""Verify a run again from its directory alone — also a run whose process was killed."""

from __future__ import annotations

from pathlib import Path

from astrachaos.events import DriverOutcome
from astrachaos.ledger.writer import LedgerRecord
from astrachaos.run import rundir
from astrachaos.run.processes import segments
from astrachaos.run.result import RunResult
from astrachaos.run.saved import SavedRun, SavedSide, open_run
from astrachaos.run.verdict import RunFacts, VerifiedSide, build_result, throughput_of
from astrachaos.verify.connection import verify_run_table
from astrachaos.workload.stats import Latency, latency_of, new_histogram, record_latency

NOTE = "re-verified from the ledger; latency is per record from ledger timestamps"


class _Timing:
    """Latency and throughput re-derived from the ledger's records."""

    def __init__(self) -> None:
        self.histogram = new_histogram()
        self.first: int | None = None
        self.last: int | None = None
        self.answered = 0

    def see(self, record: LedgerRecord) -> None:
        submitted = record.submitted_ns
        if record.completed_ns is None or submitted is None:
            return
        self.answered += 1
        self.first = submitted if self.first is None else min(self.first, submitted)
        self.last = record.completed_ns if self.last is None else max(self.last, record.completed_ns)
        if record.outcome is DriverOutcome.ACKED:
            record_latency(self.histogram, submitted, record.completed_ns)

    def latency(self) -> Latency:
        return latency_of(self.histogram)

    @property
    def span_s(self) -> float:
        return ((self.last or 0) - (self.first or 0)) / 1e9


def reverify(path: Path) -> RunResult:
    """Read the run's scenario and ledgers, verify every side against its table, rewrite `result.json`.

    What only the live run could measure (throttler and injector statistics, its notes) is kept
    from the result the run wrote, when there is one.
    """
    saved = open_run(path)
    previous = saved.result_if_any()
    primary = _verify_side(saved, saved.primary)
    secondary = None if saved.secondary is None else _verify_side(saved, saved.secondary)
    timing = _Timing()
    with saved.primary.ledger() as ledger:
        for record in ledger.iter_records():
            timing.see(record)
    facts = RunFacts(
        run_id=saved.run_id,
        random_seed=saved.scenario.random_seed or 0,
        started_at=saved.primary.meta.get("started_at", ""),
        finished_at=rundir.now_iso(),
        throughput=throughput_of(primary.verification.acknowledged, timing.answered, timing.span_s),
        latency=timing.latency(),
        throttler=previous.throttler if previous else {},
        injectors=previous.injectors if previous else [],
        notes=[*(n for n in (previous.notes if previous else []) if n != NOTE), NOTE],
    )
    result = build_result(saved.scenario, facts, primary, secondary)
    rundir.write_result(saved.dir, result.to_json_dict())
    return result


def _verify_side(saved: SavedRun, side: SavedSide) -> VerifiedSide:
    profile = saved.profile(side)
    table = side.table(profile)
    with side.ledger() as ledger:
        for segment in segments(saved.path) if side is saved.primary else ():  # left by a killed run
            ledger.absorb(segment)
        verification = verify_run_table(profile, table, saved.run_id, ledger, saved.scenario, side.started_ns)
    return VerifiedSide(profile.name, table.keyspace, table.name, verification)
