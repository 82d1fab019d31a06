"""Run one scenario: connect, write through the app pattern under faults, roll back, verify.

Execution returns data; it never prints or exits. A caller observes a run through its events
(`Runner.events`: phases, active faults) and `Runner.progress`, fed by them.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from astrachaos.config.settings import Profile
from astrachaos.driver.session import preflight
from astrachaos.driver.table import RunTable, run_table
from astrachaos.dropin.runsession import AppSessions
from astrachaos.errors import Inconclusive, Interrupted, InvalidScenario, RollbackFailed
from astrachaos.events import EventBus, FaultWindow, PhaseStarted
from astrachaos.injectors.active import ActiveInjectors
from astrachaos.run import rundir, signals
from astrachaos.run.processes import write_in_processes
from astrachaos.run.progress import RunProgress
from astrachaos.run.result import RunResult
from astrachaos.run.side import Side, SidePlan, open_side
from astrachaos.run.targets import local_cluster_for, resolve_profile, secondary_profile, target_table
from astrachaos.run.verdict import RunFacts, VerifiedSide, build_result, throughput_of
from astrachaos.run.writer_process import is_client_fault, merge_throttler_stats
from astrachaos.run.writing import WriteBudget, build_patterns, reset_trigger
from astrachaos.scenario import Scenario
from astrachaos.verify.partitions import Verification
from astrachaos.workload.applog import ApplicationLog
from astrachaos.workload.channel import Channel
from astrachaos.workload.dualwrite import DualChannel, mirror
from astrachaos.workload.plan import RecordPlan
from astrachaos.workload.stats import WriteStats
from astrachaos.workload.writers import Writers

log = logging.getLogger(__name__)
FAULTS_FILE = "faults.json"
_INTERRUPTED_DRAIN_S = 2.0


@dataclass
class _WriteMeasures:
    """The write phase as the runner measured it: its start, statistics, length and notes."""

    started_ns: int
    stats: WriteStats
    seconds: float
    notes: list[str]
    host_downs: int = 0


class Runner:
    """One run of one scenario, from connection to verdict."""

    def __init__(self, scenario: Scenario, out: Path | None = None) -> None:
        self.scenario = scenario
        self.random_seed = (
            scenario.random_seed if scenario.random_seed is not None else random.randrange(2**31)
        )
        self.run_id = rundir.new_run_id(scenario.name)
        # Everything that can fail without the database is checked before the directory exists.
        path = rundir.path_for(out, self.run_id)
        rundir.refuse_if_used(path)
        self.stop = threading.Event()
        self.interrupted = False
        self._writing = False
        self._interrupted_at: float | None = None
        self._rollback_thread: threading.Thread | None = None
        self.events = EventBus()  # the run's own events (phases, active faults); subscribe before run()
        self.progress = RunProgress(scenario.workload.records)
        self.progress.subscribe(self.events)
        self._process_throttler: dict[str, int] = {}
        self._process_injectors: list[dict[str, Any]] = []
        self._run_plans = self._plans(path)
        self.dir = rundir.create(path, scenario.model_copy(update={"random_seed": self.random_seed}))
        self.sides: list[Side] = []  # the opened targets while the run lasts, for live observers

    def _phase(self, phase: str) -> None:
        log.debug("run %s: %s", self.run_id, phase)
        self.events.publish(PhaseStarted(phase))

    def interrupt(self) -> bool:
        """Stop: roll every active fault back now, on a thread of its own, and stop the writers.

        Returns True when the run then winds down by itself (it was writing: writers stop, drain
        briefly, the run directory is finalised and `run` raises Interrupted); otherwise the
        caller should interrupt what the run is doing (a KeyboardInterrupt).
        """
        first = not self.interrupted
        self.interrupted = True
        if first:
            self._interrupted_at = time.monotonic()
        self.stop.set()
        if first:
            self._rollback_thread = threading.Thread(
                target=self._roll_back_now, name="rollback-on-signal", daemon=True
            )
            self._rollback_thread.start()
        return first and self._writing

    def _drain(self, channel: Channel | AppSessions, timeout_s: float) -> bool:
        """Wait for the answers still due; once interrupted, at most _INTERRUPTED_DRAIN_S more."""
        end = time.monotonic() + timeout_s
        while not channel.wait_idle(min(0.25, max(0.0, end - time.monotonic()))):
            if self._interrupted_at is not None:
                end = min(end, self._interrupted_at + _INTERRUPTED_DRAIN_S)
            if time.monotonic() >= end:
                return False
        return True

    def _roll_back_now(self) -> None:
        try:
            _finish_all(self._run_plans)
        except RollbackFailed:  # the main thread's own rollback retries it and raises (exit 6)
            log.exception("rollback on interrupt failed")

    def run(self) -> RunResult:
        """Write, drain, roll back, verify; the ledgers and run directory survive any failure."""
        scenario = self.scenario
        started_at = rundir.now_iso()
        plans = self._run_plans
        self._phase("connecting")
        signals.register(self)
        try:
            with ExitStack() as opened:
                sides = [
                    opened.enter_context(
                        open_side(plan, scenario, self.run_id, self._meta(plan.profile, plan.table))
                    )
                    for plan in plans
                ]
                self.sides = sides
                write = self._write(sides)
                for side in sides:
                    side.ledger.flush()
                if self.interrupted:
                    raise Interrupted(
                        f"interrupted; faults rolled back; the ledger is in {self.dir.path} "
                        f"(`astrachaos verify {self.dir.path}` verifies what was written)"
                    )
                self._phase("verifying")
                try:
                    verifications = [side.verify(scenario, self.run_id, write.started_ns) for side in sides]
                except Inconclusive as error:
                    raise Inconclusive(
                        f"{error.message}; the run directory {self.dir.path} is intact",
                        hint=f"`astrachaos verify {self.dir.path}` verifies it once the database answers",
                    ) from None
                throttler = merge_throttler_stats([_throttler_stats(sides[0]), self._process_throttler])
                injector_stats = [asdict(s) for plan in plans for s in plan.injectors.stats()]
                injector_stats += self._process_injectors
                for side in sides:
                    side.ledger.set_meta({"finished_at": rundir.now_iso()})
        finally:
            signals.unregister(self)
            self._save_faults(plans)
        result = self._result(plans, started_at, write, verifications, throttler, injector_stats)
        rundir.write_result(self.dir, result.to_json_dict())
        return result

    def _plans(self, path: Path) -> list[SidePlan]:
        scenario = self.scenario
        profile = resolve_profile(scenario)
        preflight(profile)
        primary = SidePlan(
            "primary",
            profile,
            target_table(scenario, profile),
            self._injectors("primary", profile),
            path / rundir.LEDGER_FILE,
        )
        secondary = scenario.target.secondary
        if secondary is None:
            return [primary]
        other = secondary_profile(scenario)
        assert other is not None
        preflight(other)
        table = run_table(secondary.keyspace, scenario.schema_.table, astra=other.kind == "astra")
        if (table.keyspace, table.name) == (primary.table.keyspace, primary.table.name) and (
            other.contact_points == profile.contact_points
        ):
            raise InvalidScenario("target.secondary writes to the primary's own table")
        ledger = rundir.RunDir(path).secondary_ledger
        return [primary, SidePlan("secondary", other, table, self._injectors("secondary", other), ledger)]

    def _injectors(self, side: str, profile: Profile) -> ActiveInjectors:
        specs = [spec for spec in self.scenario.injectors if spec.side == side]
        if self.scenario.workload.processes > 1:  # client faults act inside each writer process
            specs = [spec for spec in specs if not is_client_fault(spec)]
        events = self.events if side == "primary" else None
        return ActiveInjectors(specs, profile, local_cluster_for(profile), self.random_seed, events=events)

    def _write(self, sides: list[Side]) -> _WriteMeasures:
        if self.scenario.workload.processes > 1:
            return self._write_in_processes(sides)
        scenario = self.scenario
        primary = sides[0]
        self.progress.subscribe(primary.bus)
        channels = [side.channel for side in sides]
        channel: Channel = channels[0]
        if len(sides) == 2:
            assert scenario.target.secondary is not None
            mirror(primary.bus, sides[1].bus)
            channel = DualChannel(channels[0], channels[1], scenario.target.secondary.strategy)
        app_log = ApplicationLog(self.dir.app_log, primary.bus, str(scenario.pattern.name))
        app_sessions = self._app_sessions(sides)
        patterns = build_patterns(
            scenario, channel, app_log, range(scenario.workload.writers),
            table=primary.table.qualified, run_id=self.run_id,
            session_factory=None if app_sessions is None else app_sessions.open,
        )  # fmt: skip
        plan = RecordPlan(scenario.workload, self.run_id, scenario.schema_.buckets, self.random_seed)
        reset = reset_trigger(scenario, primary.sessions.reset_in_background)
        writers = Writers(scenario, plan, patterns, channel, primary.bus, reset, self.stop)
        started_ns = time.monotonic_ns()  # set up; the writers start now
        for side in sides:
            side.ledger.set_meta({"started_ns": str(started_ns)})
        self._phase("writing")
        notes: list[str] = []
        timeout_s = max(side.plan.request_timeout_s for side in sides)
        budget = WriteBudget(scenario.workload.max_duration_s, self.stop)
        self._writing = True
        if not self.stop.is_set():  # an interrupt before the write phase applies no fault
            for side in sides:
                side.injectors.start()
        try:
            try:
                phase = writers.run()
            except KeyboardInterrupt:
                self.interrupt()
                phase = writers.run_until_stopped()
            budget.cancel()
            if budget.reached:
                notes.append(
                    f"workload.max_duration_s ({budget.seconds:g} s) reached: {phase.handed_over} of "
                    f"{scenario.workload.records} records handed over; retries still pending were "
                    "dropped at shutdown"
                )
            primary.sessions.wait_resets()
            self._phase("draining")
            if not self._drain(channel, timeout_s + 5):
                notes.append(f"{channel.in_flight} statements unanswered when the drain ended")
            if app_sessions is not None and not self._drain(app_sessions, timeout_s + 5):
                notes.append(f"{app_sessions.in_flight} app writes unanswered when the drain ended")
        finally:
            self._writing = False
            self._phase("rolling back faults")
            _finish_all([side.plan for side in sides])
        for side in sides:
            side.injectors.check()
        seconds = (time.monotonic_ns() - started_ns) / 1e9
        host_notes = [note for side in sides for note in side.record_host_downs(started_ns)]
        notes.extend(host_notes)
        app_log.close()
        notes.extend(phase.writer_errors or [])
        if primary.sessions.resets:
            notes.append(f"session reset {primary.sessions.resets} time(s) with requests in flight")
        return _WriteMeasures(started_ns, primary.stats, seconds, notes, len(host_notes))

    def _write_in_processes(self, sides: list[Side]) -> _WriteMeasures:
        if len(sides) > 1:
            raise InvalidScenario("workload.processes > 1 cannot write to two targets (target.secondary)")
        primary = sides[0]
        meta = self._meta(primary.profile, primary.table)
        phase = write_in_processes(
            self.scenario, primary, self.run_id, self.random_seed, self.dir.path, meta,
            self.progress.add, self._phase, lambda: _finish_all([side.plan for side in sides]),
        )  # fmt: skip
        self.interrupted = self.interrupted or phase.interrupted
        self._process_throttler, self._process_injectors = phase.throttler, phase.injectors
        return _WriteMeasures(phase.started_ns, phase.stats, phase.seconds, phase.notes, phase.host_downs)

    def _app_sessions(self, sides: list[Side]) -> AppSessions | None:
        """The sessions a user's own pattern writes through (`ctx.session`); none for a dual write."""
        if len(sides) != 1:
            return None
        primary = sides[0]
        hooks = primary.injectors.client_hooks
        return AppSessions(primary.sessions, hooks, primary.bus, primary.table.keyspace, primary.table.name)

    def _result(
        self,
        sides: list[SidePlan],
        started_at: str,
        write: _WriteMeasures,
        verifications: list[Verification],
        throttler: dict[str, int],
        injector_stats: list[dict[str, Any]],
    ) -> RunResult:
        answered = sum(write.stats.outcomes.values())
        facts = RunFacts(
            run_id=self.run_id,
            random_seed=self.random_seed,
            started_at=started_at,
            finished_at=rundir.now_iso(),
            throughput=throughput_of(verifications[0].acknowledged, answered, write.seconds),
            latency=write.stats.latency(),
            throttler=throttler,
            injectors=injector_stats,
            notes=write.notes,
            driver={"host_downs": write.host_downs, **_answer_stats(throttler)},
        )
        verified = [
            VerifiedSide(side.profile.name, side.table.keyspace, side.table.name, v)
            for side, v in zip(sides, verifications, strict=True)
        ]
        return build_result(self.scenario, facts, verified[0], verified[1] if len(verified) == 2 else None)

    def _save_faults(self, sides: list[SidePlan]) -> None:
        timeline = [
            {"side": side.name, **_window_json(w)}
            for side in sides
            for w in side.injectors.windows()
        ]
        (self.dir.path / FAULTS_FILE).write_text(json.dumps(timeline, indent=2))

    def _meta(self, profile: Profile, table: RunTable) -> dict[str, str]:
        return {
            "run_id": self.run_id,
            "scenario": self.scenario.name,
            "seed": str(self.random_seed),
            "profile": profile.name,
            "keyspace": table.keyspace,
            "table": table.name,
            "pattern": str(self.scenario.pattern.name),
            "buckets": str(self.scenario.schema_.buckets),
            "started_at": rundir.now_iso(),
        }


def _throttler_stats(side: Side) -> dict[str, int]:
    totals: dict[str, int] = {}
    for live in side.sessions.all_sessions():
        for name, value in asdict(live.throttled.stats()).items():
            if name.startswith("max_"):
                totals[name] = max(totals.get(name, 0), value)
            else:
                totals[name] = totals.get(name, 0) + value
    return totals


def _answer_stats(throttler: dict[str, int]) -> dict[str, int]:
    return {k: throttler.get(k, 0) for k in ("expired_in_queue", "duplicate_answers")}


def _finish_all(sides: list[SidePlan]) -> None:
    """Roll back every side's faults (newest side first); the first failure is raised after all."""
    failure: RollbackFailed | None = None
    for side in reversed(sides):
        try:
            side.injectors.finish()
        except RollbackFailed as error:
            failure = failure or error
    if failure is not None:
        raise failure


def _window_json(window: FaultWindow) -> dict[str, object]:
    """A fault window as faults.json has always written it."""
    return {
        "injector": window.injector,
        "kind": window.kind,
        "start_ns": window.start_ns,
        "end_ns": window.end_ns,
    }
