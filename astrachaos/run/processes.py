"""Writer processes (`workload.processes: N`): past the GIL, one run and one verdict.

Each process is started with the 'spawn' method and opens its own driver Cluster (the driver's
event loop and connections never cross a fork), runs its share of the writers under the
scenario's client faults, and writes its own ledger segment; the application log is shared
(whole-line appends). The parent applies the other faults, shows one progress line fed by the
processes' counts, merges their statistics, and merges the segments into the run's ledger
before verification.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astrachaos.errors import EnvironmentProblem, InvalidScenario
from astrachaos.events import DriverOutcome
from astrachaos.run.side import Side
from astrachaos.run.writer_process import (
    ProcessReport,
    StartGate,
    WriterJob,
    merge_throttler_stats,
    write_in_process,
)
from astrachaos.run.writing import WriteBudget
from astrachaos.scenario import Scenario
from astrachaos.workload.stats import WriteStats

log = logging.getLogger(__name__)


def segments(run_dir: Path) -> list[Path]:
    """Ledger segments not yet merged (a run killed before merging leaves them)."""
    return sorted(run_dir.glob("ledger-p*.sqlite"))


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
        """Ask every process to stop after its current batch (Ctrl-C, or the time budget)."""
        self._stop.set()

    @property
    def stop_flag(self) -> Any:
        """The flag every process watches between batches (a multiprocessing Event)."""
        return self._stop

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


def _write_phase_end(reports: list[ProcessReport]) -> int:
    """When the last process had all its writes answered; now if one never said so.

    Not when the processes exited: closing a driver Cluster and an interpreter is no write.
    """
    if all(report.finished_ns for report in reports):
        return max(report.finished_ns for report in reports)
    return time.monotonic_ns()


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
    random_seed: int,
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
    contact_points = primary.connect_overrides.get("contact_points")
    jobs = [
        WriterJob(
            process=p,
            processes=count,
            scenario=scenario.model_dump(mode="json", by_alias=True),
            profile=primary.profile,
            table=primary.table,
            run_id=run_id,
            random_seed=random_seed,
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
    budget = WriteBudget(scenario.workload.max_duration_s, processes.stop_flag)
    primary.injectors.start()
    try:
        try:
            outcome = processes.wait()
        except KeyboardInterrupt:
            interrupted = True
            processes.stop()
            outcome = processes.wait()
        budget.cancel()
    finally:
        on_phase("rolling back faults")
        finish_faults()
    primary.injectors.check()
    seconds = (_write_phase_end(outcome.reports) - started_ns) / 1e9
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
    if budget.reached:
        notes.append(
            f"workload.max_duration_s ({budget.seconds:g} s) reached: {outcome.handed_over} of "
            f"{scenario.workload.records} records handed over"
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
