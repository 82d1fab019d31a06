"""The write side: one engine run of the `careful` pattern, and the raw driver's bulk insert."""

from __future__ import annotations

import gc
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astrachaos.driver.table import RunTable
from astrachaos.events import PhaseStarted
from astrachaos.run.runner import Runner
from astrachaos.run.targets import local_cluster_for, resolve_profile
from astrachaos.scenario import Scenario
from astrachaos.workload.plan import RecordPlan


class BenchFailure(Exception):
    """A measured run did not do what it must for its numbers to mean anything."""


@dataclass(frozen=True)
class EngineRun:
    """What one engine run reported in its `result.json`."""

    run_id: str
    records: int
    writes_per_s: float
    write_phase_s: float
    rows_read: int
    verify_s: float
    write_cpu_s: float  # process CPU from the start of writing to the start of verifying
    node_cpu_s: float | None = None  # the local node's CPU over the same span (None: not known)
    run_dir: Path | None = None  # where the run left its ledger, to verify it again
    gc_s: float = 0.0  # this process's time in the cyclic collector over the write phase

    @property
    def node_cpu_us_per_record(self) -> float | None:
        """The database node's CPU per record written (its other clients' load included)."""
        return None if self.node_cpu_s is None else self.node_cpu_s / self.records * 1e6

    @property
    def write_cpu_us_per_record(self) -> float:
        """Client CPU spent per record written (every thread of the process)."""
        return self.write_cpu_s / self.records * 1e6

    @property
    def verify_rows_per_s(self) -> float:
        """Verification read rate in the run, right after its writes, as the engine measured it."""
        return self.rows_read / self.verify_s if self.verify_s else 0.0


@dataclass(frozen=True)
class RawWrite:
    """One timed `execute_concurrent_with_args` over a whole record set."""

    run_id: str
    records: int
    seconds: float
    cpu_s: float  # process CPU while the inserts ran
    node_cpu_s: float | None = None  # the local node's CPU while the inserts ran
    gc_s: float = 0.0  # time in the cyclic collector while the inserts ran

    @property
    def node_cpu_us_per_record(self) -> float | None:
        """The database node's CPU per record written (its other clients' load included)."""
        return None if self.node_cpu_s is None else self.node_cpu_s / self.records * 1e6

    @property
    def cpu_us_per_record(self) -> float:
        """Client CPU spent per record written (every thread of the process)."""
        return self.cpu_s / self.records * 1e6

    @property
    def writes_per_s(self) -> float:
        """Acknowledged inserts per second."""
        return self.records / self.seconds


class NodeCpu:
    """CPU seconds used so far by the local node serving a scenario's profile (Linux /proc).

    The node shares the machine's cores with the client: what it uses per record bounds what
    any client can reach. Its other clients (other runs on the machine) are counted too.
    """

    def __init__(self, scenario: Scenario) -> None:
        self._pid: int | None = None
        try:
            cluster = local_cluster_for(resolve_profile(scenario))
            self._pid = None if cluster is None else cluster.nodes[0].pid()
        except Exception:  # a bench without a local node still measures the client
            self._pid = None

    def seconds(self) -> float | None:
        """utime + stime of the node's JVM, or None when it is not known."""
        if self._pid is None:
            return None
        try:
            with open(f"/proc/{self._pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CollectorClock:
    """Seconds this process has spent in Python's cyclic collector (each pass holds the GIL)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._began = 0.0
        gc.callbacks.append(self._tick)

    def _tick(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._began


COLLECTOR = CollectorClock()


def _spent(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def run_engine(scenario: Scenario, out: Path) -> EngineRun:
    """Run the scenario through the real engine; refuse a run that lost or failed anything."""
    cpu_at: dict[str, float] = {}
    node = NodeCpu(scenario)
    node_at: dict[str, float | None] = {}
    gc_at: dict[str, float] = {}

    def mark(event: PhaseStarted) -> None:
        cpu_at[event.phase] = time.process_time()
        node_at[event.phase] = node.seconds()
        gc_at[event.phase] = COLLECTOR.seconds

    runner = Runner(scenario, out)
    runner.events.subscribe(PhaseStarted, mark)
    runner.run()
    result = json.loads(runner.dir.result.read_text())
    counts = result["counts"]
    if result["exit_code"] != 0 or counts["acknowledged"] != scenario.workload.records:
        raise BenchFailure(
            f"engine run {result['run_id']} is not clean: exit {result['exit_code']}, "
            f"{counts['acknowledged']}/{scenario.workload.records} acknowledged"
        )
    return EngineRun(
        run_id=result["run_id"],
        records=scenario.workload.records,
        writes_per_s=result["throughput"]["writes_per_s"],
        write_phase_s=result["throughput"]["write_phase_s"],
        rows_read=result["verification"]["rows_read"],
        verify_s=result["verification"]["seconds"],
        write_cpu_s=cpu_at["verifying"] - cpu_at["writing"],
        node_cpu_s=_spent(node_at["writing"], node_at["verifying"]),
        run_dir=runner.dir.path,
        gc_s=gc_at["verifying"] - gc_at["writing"],
    )


def record_values(scenario: Scenario, run_id: str) -> list[tuple[Any, ...]]:
    """The bound values the engine would send for this scenario, in the same column order."""
    plan = RecordPlan(scenario.workload, run_id, scenario.schema_.buckets, scenario.random_seed or 0)
    return [
        (run_id, p.record.bucket, p.record.key, p.record.record_id, p.record.writer,
         p.record.batch, p.payload)
        for writer in range(scenario.workload.writers)
        for batch in plan.batches(writer)
        for p in batch
    ]  # fmt: skip


def raw_write(
    session: Any,
    table: RunTable,
    scenario: Scenario,
    run_id: str,
    concurrency: int,
    results_generator: bool = False,
) -> RawWrite:
    """Insert the scenario's records with the driver alone; only the inserts are timed.

    `results_generator`: the driver's option that keeps no results (nor their futures) alive; the
    generator sends as it is read, so the results are counted inside the timing either way.
    """
    from cassandra.concurrent import execute_concurrent_with_args

    prepared = session.prepare(table.insert_cql(scenario.schema_.ttl_s))
    prepared.is_idempotent = True  # as the engine marks its inserts
    values = record_values(scenario, run_id)
    node = NodeCpu(scenario)
    node_before = node.seconds()
    began, cpu, collecting = time.perf_counter(), time.process_time(), COLLECTOR.seconds
    results = execute_concurrent_with_args(
        session, prepared, values, concurrency=concurrency, raise_on_first_error=True,
        results_generator=results_generator,
    )  # fmt: skip
    failed = sum(1 for ok, _ in results if not ok)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    collecting = COLLECTOR.seconds - collecting
    node_cpu = _spent(node_before, node.seconds())
    if failed:
        raise BenchFailure(f"raw write {run_id}: {failed} of {len(values)} inserts failed")
    return RawWrite(run_id, len(values), seconds, cpu, node_cpu, collecting)
