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
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tenacity

from astrachaos.config.settings import Profile
from astrachaos.driver.resettable import ResettableSession
from astrachaos.driver.retry import is_retryable
from astrachaos.driver.table import RunTable, run_table
from astrachaos.errors import Interrupted, InvalidScenario, RollbackFailed
from astrachaos.events import EventBus, FaultWindow, PhaseStarted
from astrachaos.injectors.active import ActiveInjectors
from astrachaos.patterns.interface import PatternContext, SharedAppState
from astrachaos.patterns.registry import build
from astrachaos.run import rundir
from astrachaos.run.progress import RunProgress
from astrachaos.run.result import RunResult
from astrachaos.run.side import Side, SidePlan, open_side
from astrachaos.run.targets import local_cluster_for, resolve_profile, secondary_profile, target_table
from astrachaos.run.verdict import RunFacts, VerifiedSide, build_result, throughput_of
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


@dataclass
class _WriteMeasures:
    """The write phase as the runner measured it: its start, statistics, length and notes."""

    started_ns: int
    stats: WriteStats
    seconds: float
    notes: list[str]


class Runner:
    """One run of one scenario, from connection to verdict."""

    def __init__(self, scenario: Scenario, out: Path | None = None) -> None:
        self.scenario = scenario
        self.random_seed = (
            scenario.random_seed if scenario.random_seed is not None else random.randrange(2**31)
        )
        self.run_id = rundir.new_run_id(scenario.name)
        recorded = scenario.model_copy(update={"random_seed": self.random_seed})
        self.dir = rundir.create(out, self.run_id, recorded)
        self.stop = threading.Event()
        self.interrupted = False
        self.events = EventBus()  # the run's own events (phases, active faults); subscribe before run()
        self.progress = RunProgress(scenario.workload.records)
        self.progress.subscribe(self.events)

    def _phase(self, phase: str) -> None:
        self.events.publish(PhaseStarted(phase))

    def run(self) -> RunResult:
        """Write, drain, roll back, verify; the ledgers and run directory survive any failure."""
        scenario = self.scenario
        started_at = rundir.now_iso()
        plans = self._plans()
        self._phase("connecting")
        try:
            with ExitStack() as opened:
                sides = [
                    opened.enter_context(
                        open_side(plan, scenario, self.run_id, self._meta(plan.profile, plan.table))
                    )
                    for plan in plans
                ]
                write = self._write(sides)
                for side in sides:
                    side.ledger.flush()
                if self.interrupted:
                    raise Interrupted(
                        f"interrupted; faults rolled back; the ledger is in {self.dir.path} "
                        f"(`astrachaos verify {self.dir.path}` verifies what was written)"
                    )
                self._phase("verifying")
                verifications = [side.verify(scenario, self.run_id, write.started_ns) for side in sides]
                throttler = _throttler_stats(sides[0])
                injector_stats = [asdict(s) for plan in plans for s in plan.injectors.stats()]
                for side in sides:
                    side.ledger.set_meta({"finished_at": rundir.now_iso()})
        finally:
            self._save_faults(plans)
        result = self._result(plans, started_at, write, verifications, throttler, injector_stats)
        rundir.write_result(self.dir, result.to_json_dict())
        return result

    def _plans(self) -> list[SidePlan]:
        scenario = self.scenario
        profile = resolve_profile(scenario)
        primary = SidePlan(
            "primary",
            profile,
            target_table(scenario, profile),
            self._injectors("primary", profile),
            self.dir.ledger,
        )
        secondary = scenario.target.secondary
        if secondary is None:
            return [primary]
        other = secondary_profile(scenario)
        assert other is not None
        table = run_table(secondary.keyspace, scenario.schema_.table, astra=other.kind == "astra")
        if (table.keyspace, table.name) == (primary.table.keyspace, primary.table.name) and (
            other.contact_points == profile.contact_points
        ):
            raise InvalidScenario("target.secondary writes to the primary's own table")
        ledger = self.dir.secondary_ledger
        return [primary, SidePlan("secondary", other, table, self._injectors("secondary", other), ledger)]

    def _injectors(self, side: str, profile: Profile) -> ActiveInjectors:
        specs = [spec for spec in self.scenario.injectors if spec.side == side]
        events = self.events if side == "primary" else None
        return ActiveInjectors(specs, profile, local_cluster_for(profile), self.random_seed, events=events)

    def _write(self, sides: list[Side]) -> _WriteMeasures:
        scenario = self.scenario
        primary = sides[0]
        started_ns = time.monotonic_ns()
        for side in sides:
            side.ledger.set_meta({"started_ns": str(started_ns)})
        self.progress.subscribe(primary.bus)
        channels = [side.channel for side in sides]
        channel: Channel = channels[0]
        if len(sides) == 2:
            assert scenario.target.secondary is not None
            mirror(primary.bus, sides[1].bus)
            channel = DualChannel(channels[0], channels[1], scenario.target.secondary.strategy)
        app_log = ApplicationLog(self.dir.app_log, primary.bus, scenario.pattern.name.value)
        patterns = self._patterns(channel, app_log)
        plan = RecordPlan(scenario.workload, self.run_id, scenario.schema_.buckets, self.random_seed)
        writers = Writers(
            scenario, plan, patterns, channel, primary.bus, self._reset_trigger(primary.sessions), self.stop
        )
        self._phase("writing")
        notes: list[str] = []
        timeout_s = max(side.plan.request_timeout_s for side in sides)
        for side in sides:
            side.injectors.start()
        try:
            try:
                phase = writers.run()
            except KeyboardInterrupt:
                self.interrupted = True
                self.stop.set()
                phase = writers.run_until_stopped()
            primary.sessions.wait_resets()
            self._phase("draining")
            if not channel.wait_idle(timeout_s + 5):
                notes.append(f"{channel.in_flight} statements unanswered after {timeout_s + 5:.0f}s")
        finally:
            self._phase("rolling back faults")
            _finish_all([side.plan for side in sides])
        for side in sides:
            side.injectors.check()
        seconds = (time.monotonic_ns() - started_ns) / 1e9
        app_log.close()
        notes.extend(phase.writer_errors or [])
        if primary.sessions.resets:
            notes.append(f"session reset {primary.sessions.resets} time(s) with requests in flight")
        return _WriteMeasures(started_ns, primary.stats, seconds, notes)

    def _patterns(self, channel: Channel, app_log: ApplicationLog) -> list[Any]:
        scenario = self.scenario
        shared = SharedAppState()
        wait = tenacity.wait_exponential_jitter(multiplier=0.05, max=2.0)
        return [
            build(
                PatternContext(
                    channel=channel,
                    log=app_log,
                    spec=scenario.pattern,
                    shared=shared,
                    writer=w,
                    retry_delay_s=lambda attempt: float(wait(_attempt_state(attempt))),
                    is_retryable=is_retryable,
                )
            )
            for w in range(scenario.workload.writers)
        ]

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

    def _reset_trigger(self, sessions: ResettableSession) -> Callable[[int], None]:
        reset = self.scenario.pattern.session_reset
        if reset is None:
            return lambda total: None
        fired = threading.Event()

        def maybe_reset(total: int) -> None:
            if total >= reset.after_records and not fired.is_set():
                fired.set()
                sessions.reset_in_background()

        return maybe_reset

    def _meta(self, profile: Profile, table: RunTable) -> dict[str, str]:
        return {
            "run_id": self.run_id,
            "scenario": self.scenario.name,
            "seed": str(self.random_seed),
            "profile": profile.name,
            "keyspace": table.keyspace,
            "table": table.name,
            "pattern": self.scenario.pattern.name.value,
            "buckets": str(self.scenario.schema_.buckets),
            "started_at": rundir.now_iso(),
        }


def _attempt_state(attempt: int) -> Any:
    state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return state


def _throttler_stats(side: Side) -> dict[str, int]:
    totals: dict[str, int] = {}
    for live in side.sessions.all_sessions():
        for name, value in asdict(live.throttled.stats()).items():
            if name.startswith("max_"):
                totals[name] = max(totals.get(name, 0), value)
            else:
                totals[name] = totals.get(name, 0) + value
    return totals


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
