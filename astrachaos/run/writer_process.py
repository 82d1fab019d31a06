"""One writer process (`workload.processes: N`): its own Cluster, its writers, its ledger segment.

Started with the 'spawn' method, so the driver's event loop and connections never cross a fork.
It connects, waits at the start gate until every process has, writes its share of the writers
under the scenario's client faults, sends its counts to the parent while it writes, and reports
its statistics at the end; its ledger segment is merged by the parent.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from astrachaos.config.settings import Profile
from astrachaos.driver.table import RunTable
from astrachaos.events import DriverOutcome, WriteCompleted
from astrachaos.injectors.active import ActiveInjectors
from astrachaos.injectors.registry import lookup
from astrachaos.run.side import Side, SidePlan, open_side
from astrachaos.run.writing import build_patterns, reset_trigger
from astrachaos.scenario import InjectorSpec, Scenario
from astrachaos.workload.applog import ApplicationLog
from astrachaos.workload.plan import RecordPlan
from astrachaos.workload.writers import Writers

log = logging.getLogger(__name__)
_PROGRESS_INTERVAL_S = 0.3
_READY_TIMEOUT_S = 120.0


def is_client_fault(spec: InjectorSpec) -> bool:
    """Faults inside the driver call path act in each writer process; the others in the parent."""
    return lookup(spec.name).kind == "client"


def segment_path(run_dir: Path, process: int) -> Path:
    """Where writer process `process` keeps its ledger segment."""
    return run_dir / f"ledger-p{process}.sqlite"


@dataclass(frozen=True)
class WriterJob:
    """What one writer process needs; picklable (it crosses to a spawned interpreter)."""

    process: int
    processes: int
    scenario: dict[str, Any]
    profile: Profile
    table: RunTable
    run_id: str
    random_seed: int
    run_dir: str
    meta: dict[str, str]
    contact_points: tuple[str, ...] | None = None  # a proxy injector's overrides, if any
    port: int | None = None


@dataclass
class ProcessReport:
    """What one writer process did, sent back to the parent."""

    process: int
    handed_over: int = 0
    histogram: bytes = b""
    outcomes: dict[str, int] = field(default_factory=dict)
    throttler: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    host_downs: int = 0
    injectors: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    finished_ns: int = 0  # monotonic: its writes all answered (0: it never got that far)


def writer_ids(job: WriterJob, writers: int) -> list[int]:
    """The writers process `job.process` runs: every N-th one."""
    return list(range(job.process, writers, job.processes))


@dataclass(frozen=True)
class StartGate:
    """Every process connects first; the write phase (and its clock) starts when all are ready."""

    ready: Any  # a Barrier of processes + 1 (the parent)
    go: Any  # an Event
    started_ns: Any  # a shared 64-bit integer, set by the parent before `go`

    def wait_for_start(self) -> int:
        """In a writer process: ready; wait for the parent's start; the phase's start time."""
        self.ready.wait(_READY_TIMEOUT_S)
        self.go.wait()
        return int(self.started_ns.value)

    def open(self) -> int:
        """In the parent: wait until every process is ready (or failed), then start them all."""
        # A process that failed to connect breaks the barrier and reports its error; the others
        # write anyway.
        with contextlib.suppress(threading.BrokenBarrierError):
            self.ready.wait(_READY_TIMEOUT_S)
        started_ns = time.monotonic_ns()
        self.started_ns.value = started_ns
        self.go.set()
        return started_ns


def write_in_process(job: WriterJob, progress: Any, stop: Any, reports: Any, gate: StartGate) -> None:
    """A writer process's body: connect, write its writers' records, report, close."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides: it sets `stop`
    report = ProcessReport(job.process)
    try:
        _write(job, progress, stop, report, gate)
    except BaseException as error:  # reported to the parent, which names it in the result
        log.exception("writer process %s failed", job.process)
        report.error = f"writer process {job.process}: {type(error).__name__}: {error}"
        gate.ready.abort()  # the parent must not wait for a process that will never be ready
    reports.put(report)


def _write(job: WriterJob, progress: Any, stop: Any, report: ProcessReport, gate: StartGate) -> None:
    scenario = Scenario.model_validate(job.scenario)
    specs = [spec for spec in scenario.injectors if spec.side == "primary" and is_client_fault(spec)]
    injectors = ActiveInjectors(specs, job.profile, None, job.random_seed)
    plan = SidePlan(
        "primary", job.profile, job.table, injectors, segment_path(Path(job.run_dir), job.process)
    )
    connect_to: dict[str, Any] = {}
    if job.contact_points is not None:
        connect_to = {"contact_points": list(job.contact_points), "port": job.port or job.profile.port}
    meta = {**job.meta, "process": str(job.process)}
    with open_side(plan, scenario, job.run_id, meta, connect_to) as side:
        _write_side(job, scenario, side, progress, stop, report, gate)


def _write_side(
    job: WriterJob,
    scenario: Scenario,
    side: Side,
    progress: Any,
    stop: Any,
    report: ProcessReport,
    gate: StartGate,
) -> None:
    channel = side.channel
    counts = _ProgressCounts()
    side.bus.subscribe(WriteCompleted, counts.on_completed)
    app_log = ApplicationLog(Path(job.run_dir) / "app.log.jsonl", side.bus, str(scenario.pattern.name))
    patterns = build_patterns(
        scenario, channel, app_log, writer_ids(job, scenario.workload.writers),
        table=job.table.qualified, run_id=job.run_id,
    )  # a user pattern's own sessions (`ctx.session`): not in writer processes yet
    records = RecordPlan(scenario.workload, job.run_id, scenario.schema_.buckets, job.random_seed)
    halt = threading.Event()
    watcher = threading.Thread(target=_forward, args=(stop, halt, counts, progress), daemon=True)
    watcher.start()
    writers = Writers(
        scenario,
        records,
        patterns,
        channel,
        side.bus,
        reset_trigger(scenario, side.sessions.reset_in_background),
        stop=halt,
        writer_ids=list(patterns),
        process=job.process,
    )
    started_ns = gate.wait_for_start()
    side.ledger.set_meta({"started_ns": str(started_ns)})
    side.injectors.start()
    try:
        phase = writers.run()
        side.sessions.wait_resets()
        if not channel.wait_idle(side.plan.request_timeout_s + 5):
            report.notes.append(f"process {job.process}: {channel.in_flight} statements unanswered")
        report.finished_ns = time.monotonic_ns()  # CLOCK_MONOTONIC: one clock for every process
    finally:
        side.injectors.finish()
        app_log.close()
    report.handed_over = phase.handed_over
    report.notes.extend(phase.writer_errors or [])
    host_notes = side.record_host_downs(started_ns)
    report.notes.extend(host_notes)
    report.host_downs = len(host_notes)
    side.ledger.flush()
    report.histogram = side.stats.histogram.encode()
    report.outcomes = {outcome.value: n for outcome, n in side.stats.outcomes.items()}
    report.injectors = [asdict(stats) for stats in side.injectors.stats()]
    report.throttler = merge_throttler_stats(
        [asdict(live.throttled.stats()) for live in side.sessions.all_sessions()]
    )
    halt.set()
    watcher.join()
    counts.flush(progress)


class _ProgressCounts:
    """This process's answered counts since the last report to the parent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answered = self._acked = self._dropped = 0
        self._errors: Counter[str] = Counter()

    def on_completed(self, event: WriteCompleted) -> None:
        n = len(event.record_ids)
        with self._lock:
            self._answered += n
            if event.outcome is DriverOutcome.ACKED:
                self._acked += n
            elif event.outcome is DriverOutcome.DROPPED:
                self._dropped += n
            if event.error_class:
                self._errors[event.error_class] += n

    def flush(self, progress: Any) -> None:
        with self._lock:
            delta = (self._answered, self._acked, self._dropped, dict(self._errors))
            self._answered = self._acked = self._dropped = 0
            self._errors.clear()
        if delta[0]:
            progress.put(delta)


def _forward(stop: Any, halt: threading.Event, counts: _ProgressCounts, progress: Any) -> None:
    """Send progress to the parent; pass its stop request on to this process's writers."""
    while not halt.wait(_PROGRESS_INTERVAL_S):
        counts.flush(progress)
        if stop.is_set():
            halt.set()


def merge_throttler_stats(parts: list[dict[str, int]]) -> dict[str, int]:
    """Counters summed; high-water marks (max_*) the highest."""
    totals: dict[str, int] = {}
    for part in parts:
        for name, value in part.items():
            merged = max if name.startswith("max_") else int.__add__
            totals[name] = merged(totals[name], value) if name in totals else value
    return totals
