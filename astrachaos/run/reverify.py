"""Verify a run again from its directory alone — also a run whose process was killed."""

from __future__ import annotations

from pathlib import Path

from astrachaos.config.loader import load_scenario
from astrachaos.driver.table import run_table
from astrachaos.errors import InvalidScenario
from astrachaos.events import DriverOutcome
from astrachaos.ledger.writer import Ledger, LedgerRecord
from astrachaos.run import rundir
from astrachaos.run.result import RunResult, Throughput, check_expectations, decide_exit_code
from astrachaos.run.runner import resolve_profile
from astrachaos.verify.partitions import PartitionReader, verify
from astrachaos.workload.stats import Latency, latency_of, new_histogram, record_latency


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


def reverify(path: Path) -> RunResult:
    """Read the run's scenario and ledger, verify against the table, rewrite `result.json`."""
    from astrachaos.driver.session import connect

    run = rundir.RunDir(path)
    if not run.ledger.is_file() or not run.scenario.is_file():
        raise InvalidScenario(
            f"{path} is not a run directory: it needs {rundir.SCENARIO_FILE} and {rundir.LEDGER_FILE}"
        )
    scenario = load_scenario(run.scenario)
    ledger = Ledger.open(run.ledger)
    try:
        meta = ledger.meta()
        profile = resolve_profile(scenario)
        table = run_table(meta["keyspace"], meta["table"], astra=profile.kind == "astra")
        timing = _Timing()
        with connect(profile) as connection:
            reader = PartitionReader(connection.session, table, meta["run_id"], scenario.verify.page_size)
            started = int(meta.get("started_ns", "0") or 0)
            windows = [(w.injector, w.start_ns, w.end_ns) for w in ledger.fault_windows()]
            buckets = range(scenario.schema_.buckets)
            verification = verify(reader, ledger, buckets, scenario.verify, started, windows=windows)
        for record in ledger.iter_records():
            timing.see(record)
    finally:
        ledger.close()
    span = ((timing.last or 0) - (timing.first or 0)) / 1e9
    throughput = Throughput(
        writes_per_s=verification.acknowledged / span if span > 0 else 0.0,
        records_per_s=timing.answered / span if span > 0 else 0.0,
        write_phase_s=round(span, 3),
    )
    latency = timing.latency()
    expectations = check_expectations(scenario.expect, verification, latency, throughput)
    result = RunResult(
        run_id=meta["run_id"],
        scenario=scenario.name,
        seed=scenario.seed or 0,
        keyspace=table.keyspace,
        table=table.name,
        profile=profile.name,
        pattern=scenario.pattern.name.value,
        started_at=meta.get("started_at", ""),
        finished_at=rundir.now_iso(),
        verification=verification,
        throughput=throughput,
        latency=latency,
        throttler={},
        expectations=expectations,
        exit_code=decide_exit_code(expectations, verification),
        notes=["re-verified from the ledger; latency is per record from ledger timestamps"],
    )
    rundir.write_result(run, result.to_json_dict())
    return result
