"""Writer processes (`workload.processes: N`): past the GIL, one run and one verdict.

Each process is started with the 'spawn' method and opens its own driver Cluster (the driver's
event loop and connections never cross a fork), runs its share of the writers under the
scenario's client faults, and writes its own ledger segment; the application log is shared
(whole-line appends). The parent applies the other faults, shows one progress line fed by the
processes' counts, merges their statistics, and merges the segments into the run's ledger
before verification.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from astrachaos.config.settings import Profile
from astrachaos.driver.retry import is_retryable
from astrachaos.driver.table import RunTable
from astrachaos.errors import EnvironmentProblem, InvalidScenario
from astrachaos.events import DriverOutcome, WriteCompleted
from astrachaos.injectors.active import ActiveInjectors
from astrachaos.injectors.registry import lookup
from astrachaos.patterns.interface import AppPattern, PatternContext, SharedAppState
from astrachaos.patterns.registry import build
from astrachaos.run.side import Side
from astrachaos.scenario import InjectorSpec, Scenario
from astrachaos.workload.applog import ApplicationLog
from astrachaos.workload.plan import RecordPlan
from astrachaos.workload.stats import WriteStats
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


def segments(run_dir: Path) -> list[Path]:
    """Ledger segments not yet merged (a run killed before merging leaves them)."""
    return sorted(run_dir.glob("ledger-p*.sqlite"))


@dataclass(frozen=True)
class WriterJob:
    """What one writer process needs; picklable (it crosses to a spawned interpreter)."""

    process: int
    processes: int
    scenario: dict[str, Any]
    profile: Profile
    table: RunTable
    run_id: str
    seed: int
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
    injectors = ActiveInjectors(specs, job.profile, None, job.seed)
    side = Side("primary", job.profile, job.table, injectors, segment_path(Path(job.run_dir), job.process))
    side.connect(scenario.schema_.replication_factor, job.contact_points, job.port)
    try:
        side.open_ledger(job.run_id, {**job.meta, "process": str(job.process)})
        channel = side.make_channel(scenario, job.run_id, 0)
        counts = _ProgressCounts()
        side.bus.subscribe(WriteCompleted, counts.on_completed)
        app_log = ApplicationLog(Path(job.run_dir) / "app.log.jsonl", side.bus, scenario.pattern.name.value)
        patterns = _patterns(scenario, job, channel, app_log)
        plan = RecordPlan(scenario.workload, job.run_id, scenario.schema_.buckets, job.seed)
        halt = threading.Event()
        watcher = threading.Thread(target=_forward, args=(stop, halt, counts, progress), daemon=True)
        watcher.start()
        assert side.sessions is not None
        writers = Writers(
            scenario,
            plan,
            patterns,
            channel,
            side.bus,
            _reset_trigger(scenario, side.sessions.reset_in_background),
            stop=halt,
            writer_ids=list(patterns),
        )
        started_ns = gate.wait_for_start()
        assert side.ledger is not None
        side.ledger.set_meta({"started_ns": str(started_ns)})
        injectors.start()
        try:
            phase = writers.run()
            side.sessions.wait_resets()
            if not channel.wait_idle(side.request_timeout_s + 5):
                report.notes.append(f"process {job.process}: {channel.in_flight} statements unanswered")
        finally:
            injectors.finish()
            app_log.close()
        report.handed_over = phase.handed_over
        report.notes.extend(phase.writer_errors or [])
        host_notes = side.record_host_downs(started_ns)
        report.notes.extend(host_notes)
        report.host_downs = len(host_notes)
        assert side.ledger is not None and side.stats is not None and side.sessions is not None
        side.ledger.flush()
        report.histogram = side.stats.histogram.encode()
        report.outcomes = {outcome.value: n for outcome, n in side.stats.outcomes.items()}
        report.injectors = [asdict(stats) for stats in injectors.stats()]
        report.throttler = merge_throttler_stats(
            [asdict(live.throttled.stats()) for live in side.sessions.all_sessions()]
        )
        halt.set()
        watcher.join()
        counts.flush(progress)
    finally:
        side.close()


def _patterns(
    scenario: Scenario, job: WriterJob, channel: Any, app_log: ApplicationLog
) -> dict[int, AppPattern]:
    import tenacity

    shared = SharedAppState()
    wait = tenacity.wait_exponential_jitter(multiplier=0.05, max=2.0)
    return {
        w: build(
            PatternContext(
                channel=channel,
                log=app_log,
                spec=scenario.pattern,
                shared=shared,
                writer=w,
                retry_delay_s=lambda attempt: float(wait(_attempt_state(tenacity, attempt))),
                is_retryable=is_retryable,
            )
        )
        for w in writer_ids(job, scenario.workload.writers)
    }


def _reset_trigger(scenario: Scenario, reset: Any) -> Any:
    """`pattern.session_reset`, counted in this process: its session resets once, mid-stream."""
    spec = scenario.pattern.session_reset
    fired = threading.Event()

    def maybe_reset(total: int) -> None:
        if spec is not None and total >= spec.after_records and not fired.is_set():
            fired.set()
            reset()

    return maybe_reset


def merge_throttler_stats(parts: list[dict[str, int]]) -> dict[str, int]:
    """Counters summed; high-water marks (max_*) the highest."""
    totals: dict[str, int] = {}
    for part in parts:
        for name, value in part.items():
            merged = max if name.startswith("max_") else int.__add__
            totals[name] = merged(totals[name], value) if name in totals else value
    return totals


def merge_injector_stats(parts: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The same injector's counts from every process, added up (in the order of the first)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for part in parts:
        for stats in part:
            key = (stats["name"], stats["kind"])
            into = merged.setdefault(key, {**stats, "requests": 0, "injected": 0, "by_type": {}})
            into["requests"] += stats["requests"]
            into["injected"] += stats["injected"]
            by_type = Counter(into["by_type"])
            by_type.update(stats["by_type"])
            into["by_type"] = dict(by_type)
    return list(merged.values())


def _attempt_state(tenacity: Any, attempt: int) -> Any:
    state = tenacity.RetryCallState(None, None, (), {})
    state.attempt_number = attempt
    return state


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


@dataclass
class ProcessesOutcome:
    """What the writer processes did, together."""

    handed_over: int
    reports: list[ProcessReport]


class WriterProcesses:
    """Starts the writer processes, relays their progress, waits for their reports."""

    def __init__(self, jobs: list[WriterJob], on_progress: Any) -> None:
        self._jobs = jobs
        self._on_progress = on_progress
        context = multiprocessing.get_context("spawn")
        self._progress = context.Queue()
        self._reports = context.Queue()
        self._stop = context.Event()
        # CLOCK_MONOTONIC is one clock for every process of the machine: the parent's start time
        # is each process's too.
        self._gate = StartGate(context.Barrier(len(jobs) + 1), context.Event(), context.Value("q", 0))
        self._processes = [
            context.Process(
                target=write_in_process,
                args=(job, self._progress, self._stop, self._reports, self._gate),
                name=f"astrachaos-writer-{job.process}",
                daemon=True,
            )
            for job in jobs
        ]
        self._received: dict[int, ProcessReport] = {}

    def stop(self) -> None:
        """Ask every process to stop after its current batch (Ctrl-C)."""
        self._stop.set()

    def start(self) -> int:
        """Start every process; once all have connected, start writing: the phase's start time."""
        for process in self._processes:
            process.start()
        return self._gate.open()

    def wait(self) -> ProcessesOutcome:
        """Wait for every report (a process that dies is reported as such); call again after Ctrl-C."""
        reports = self._received
        while len(reports) < len(self._processes):
            self._relay_progress()
            try:
                report: ProcessReport = self._reports.get(timeout=0.1)
                reports[report.process] = report
            except queue.Empty:
                for job, process in zip(self._jobs, self._processes, strict=True):
                    if not process.is_alive() and job.process not in reports and self._reports.empty():
                        time.sleep(0.2)  # its report may still be in the pipe
                        if self._reports.empty():
                            reports[job.process] = ProcessReport(
                                job.process, error=f"writer process {job.process} exited {process.exitcode}"
                            )
        for process in self._processes:
            process.join()
        self._relay_progress()
        ordered = [reports[job.process] for job in self._jobs]
        return ProcessesOutcome(sum(r.handed_over for r in ordered), ordered)

    def _relay_progress(self) -> None:
        while True:
            try:
                answered, acked, dropped, errors = self._progress.get_nowait()
            except queue.Empty:
                return
            self._on_progress(answered, acked, dropped, errors)


@dataclass
class ProcessesPhase:
    """The write phase of a run in writer processes, merged."""

    started_ns: int
    stats: WriteStats
    seconds: float
    notes: list[str]
    host_downs: int
    throttler: dict[str, int]
    injectors: list[dict[str, Any]]
    interrupted: bool


def write_in_processes(
    scenario: Scenario,
    primary: Side,
    run_id: str,
    seed: int,
    run_dir: Path,
    meta: dict[str, str],
    on_progress: Callable[[int, int, int, dict[str, int]], None],
    on_phase: Callable[[str], None],
    finish_faults: Callable[[], None],
) -> ProcessesPhase:
    """Run the write phase in `workload.processes` processes; merge their segments into the ledger.

    The parent's own faults (network, protocol, node) start when every process has connected
    and are rolled back by `finish_faults` whatever happens.
    """
    count = scenario.workload.processes
    if "address_translator" in primary.connect_overrides:
        raise InvalidScenario("workload.processes > 1 cannot route through per-node proxies yet")
    assert primary.ledger is not None
    contact_points = primary.connect_overrides.get("contact_points")
    jobs = [
        WriterJob(
            process=p,
            processes=count,
            scenario=scenario.model_dump(mode="json", by_alias=True),
            profile=primary.profile,
            table=primary.table,
            run_id=run_id,
            seed=seed,
            run_dir=str(run_dir),
            meta=meta,
            contact_points=None if contact_points is None else tuple(contact_points),
            port=primary.connect_overrides.get("port"),
        )
        for p in range(count)
    ]
    processes = WriterProcesses(jobs, on_progress)
    on_phase("connecting writer processes")
    started_ns = processes.start()
    primary.ledger.set_meta({"started_ns": str(started_ns), "processes": str(count)})
    on_phase("writing")
    interrupted = False
    primary.injectors.start()
    try:
        try:
            outcome = processes.wait()
        except KeyboardInterrupt:
            interrupted = True
            processes.stop()
            outcome = processes.wait()
    finally:
        on_phase("rolling back faults")
        finish_faults()
    primary.injectors.check()
    seconds = (time.monotonic_ns() - started_ns) / 1e9
    stats, notes, host_downs = WriteStats(), [], 0
    for report in outcome.reports:
        if report.histogram:
            stats.histogram.decode_and_add(report.histogram)
        stats.outcomes.update({DriverOutcome(k): n for k, n in report.outcomes.items()})
        notes.extend(report.notes)
        host_downs += report.host_downs
    for segment in segments(run_dir):
        primary.ledger.absorb(segment)
    failed = [report.error for report in outcome.reports if report.error]
    if failed:  # its records were never all planned: no verdict can cover them
        raise EnvironmentProblem(
            "; ".join(failed)[:1000],
            hint=f"faults were rolled back; `astrachaos verify {run_dir}` verifies what was written",
        )
    notes.append(f"written by {count} processes, each with its own driver Cluster")
    return ProcessesPhase(
        started_ns,
        stats,
        seconds,
        notes,
        host_downs,
        merge_throttler_stats([r.throttler for r in outcome.reports]),
        merge_injector_stats([r.injectors for r in outcome.reports]),
        interrupted,
    )
