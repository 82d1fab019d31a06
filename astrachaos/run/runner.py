"""Run one scenario: connect, write through the app pattern under faults, roll back, verify.

Execution returns data; it never prints or exits. `on_phase` lets a caller show progress.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import tenacity

from astrachaos.config.settings import Profile, load_profile
from astrachaos.driver.resettable import ResettableSession
from astrachaos.driver.retry import is_retryable
from astrachaos.driver.table import RunTable, run_table
from astrachaos.errors import AstrachaosError, ExitCode, InvalidScenario, RollbackFailed
from astrachaos.injectors.active import ActiveInjectors
from astrachaos.patterns.interface import PatternContext, SharedAppState
from astrachaos.patterns.registry import build
from astrachaos.run import rundir
from astrachaos.run.progress import RunProgress
from astrachaos.run.result import (
    RunResult,
    SecondaryResult,
    Throughput,
    check_expectations,
    decide_exit_code,
)
from astrachaos.run.side import Side
from astrachaos.scenario import Scenario
from astrachaos.verify.partitions import Verification
from astrachaos.workload.applog import ApplicationLog
from astrachaos.workload.channel import Channel
from astrachaos.workload.dualwrite import DualChannel, mirror
from astrachaos.workload.plan import RecordPlan
from astrachaos.workload.stats import WriteStats
from astrachaos.workload.writers import Writers

log = logging.getLogger(__name__)
Phase = Callable[[str], None]
FAULTS_FILE = "faults.json"


class Interrupted(AstrachaosError):
    """The user interrupted the run; faults were rolled back and the run directory is kept."""

    exit_code = ExitCode.INTERRUPTED


def resolve_profile(scenario: Scenario) -> Profile:
    """The scenario's target profile with its driver-option overrides applied."""
    profile = load_profile(scenario.target.profile).profile
    if scenario.target.driver:
        profile = profile.with_driver_overrides(scenario.target.driver)
    return profile


def target_table(scenario: Scenario, profile: Profile) -> RunTable:
    """Where this scenario's records go on this profile."""
    keyspace = scenario.target.keyspace or profile.keyspace
    return run_table(keyspace, scenario.schema_.table, astra=profile.kind == "astra")


def local_cluster_for(profile: Profile) -> Any | None:
    """The local cluster astrachaos runs that serves this profile's first contact point."""
    if profile.kind != "local":
        return None
    from astrachaos.local.cluster import LocalCluster

    for name in LocalCluster.names():
        cluster = LocalCluster.load(name)
        if profile.contact_points[0] in cluster.contact_points:
            return cluster
    return None


@dataclass
class _WritePhase:
    started_ns: int
    stats: WriteStats
    seconds: float
    notes: list[str]


class Runner:
    """One run of one scenario, from connection to verdict."""

    def __init__(
        self,
        scenario: Scenario,
        out: Path | None = None,
        on_phase: Phase = lambda phase: None,
        stop: threading.Event | None = None,
        progress: RunProgress | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if scenario.seed is not None else random.randrange(2**31)
        self.run_id = rundir.new_run_id(scenario.name)
        self.dir = rundir.create(out, self.run_id, scenario.model_copy(update={"seed": self.seed}))
        self.stop = stop or threading.Event()
        self.interrupted = False
        self.progress = progress or RunProgress(scenario.workload.records)
        self.sides: list[Side] = []  # the targets of the running run, for live observers
        self._phase_callback = on_phase
        self._on_phase = self._phase

    def _phase(self, phase: str) -> None:
        log.debug("run %s: %s", self.run_id, phase)
        self.progress.phase = phase
        self._phase_callback(phase)

    def run(self) -> RunResult:
        """Write, drain, roll back, verify; the ledgers and run directory survive any failure."""
        scenario = self.scenario
        started_at = rundir.now_iso()
        sides = self.sides = self._sides()
        self._on_phase("connecting")
        try:
            for side in sides:
                side.connect(scenario.schema_.replication_factor)
            for side in sides:
                side.open_ledger(self.run_id, self._meta(side.profile, side.table))
            write = self._write(sides)
            for side in sides:
                assert side.ledger is not None
                side.ledger.flush()
            if self.interrupted:
                raise Interrupted(
                    f"interrupted; faults rolled back; the ledger is in {self.dir.path} "
                    f"(`astrachaos verify {self.dir.path}` verifies what was written)"
                )
            self._on_phase("verifying")
            verifications = [side.verify(scenario, self.run_id, write.started_ns) for side in sides]
            throttler = _throttler_stats(sides[0])
            injector_stats = [asdict(s) for side in sides for s in side.injectors.stats()]
            for side in sides:
                assert side.ledger is not None
                side.ledger.set_meta({"finished_at": rundir.now_iso()})
        finally:
            self._save_faults(sides)
            for side in reversed(sides):
                side.close()
        result = self._result(sides, started_at, write, verifications, throttler, injector_stats)
        rundir.write_result(self.dir, result.to_json_dict())
        return result

    def _sides(self) -> list[Side]:
        scenario = self.scenario
        profile = resolve_profile(scenario)
        primary = Side(
            "primary",
            profile,
            target_table(scenario, profile),
            self._injectors("primary", profile),
            self.dir.ledger,
        )
        primary.injectors.on_change = lambda active: setattr(self.progress, "active_faults", active)
        secondary = scenario.target.secondary
        if secondary is None:
            return [primary]
        other = load_profile(secondary.profile).profile
        if secondary.driver:
            other = other.with_driver_overrides(secondary.driver)
        table = run_table(secondary.keyspace, scenario.schema_.table, astra=other.kind == "astra")
        if (table.keyspace, table.name) == (primary.table.keyspace, primary.table.name) and (
            other.contact_points == profile.contact_points
        ):
            raise InvalidScenario("target.secondary writes to the primary's own table")
        ledger = self.dir.path / "ledger-secondary.sqlite"
        return [primary, Side("secondary", other, table, self._injectors("secondary", other), ledger)]

    def _injectors(self, side: str, profile: Profile) -> ActiveInjectors:
        specs = [spec for spec in self.scenario.injectors if spec.side == side]
        return ActiveInjectors(specs, profile, local_cluster_for(profile), self.seed)

    def _write(self, sides: list[Side]) -> _WritePhase:
        scenario = self.scenario
        primary = sides[0]
        started_ns = time.monotonic_ns()
        for side in sides:
            assert side.ledger is not None
            side.ledger.set_meta({"started_ns": str(started_ns)})
        self.progress.subscribe(primary.bus)
        channels = [side.make_channel(scenario, self.run_id, started_ns) for side in sides]
        channel: Channel = channels[0]
        if len(sides) == 2:
            assert scenario.target.secondary is not None
            mirror(primary.bus, sides[1].bus)
            channel = DualChannel(channels[0], channels[1], scenario.target.secondary.strategy)
        app_log = ApplicationLog(self.dir.app_log, primary.bus, scenario.pattern.name.value)
        patterns = self._patterns(channel, app_log)
        plan = RecordPlan(scenario.workload, self.run_id, scenario.schema_.buckets, self.seed)
        assert primary.sessions is not None
        writers = Writers(
            scenario, plan, patterns, channel, primary.bus, self._reset_trigger(primary.sessions), self.stop
        )
        self._on_phase("writing")
        notes: list[str] = []
        timeout_s = max(side.request_timeout_s for side in sides)
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
            self._on_phase("draining")
            if not channel.wait_idle(timeout_s + 5):
                notes.append(f"{channel.in_flight} statements unanswered after {timeout_s + 5:.0f}s")
        finally:
            self._on_phase("rolling back faults")
            _finish_all(sides)
        for side in sides:
            side.injectors.check()
        seconds = (time.monotonic_ns() - started_ns) / 1e9
        app_log.close()
        notes.extend(phase.writer_errors or [])
        if primary.sessions.resets:
            notes.append(f"session reset {primary.sessions.resets} time(s) with requests in flight")
        assert primary.stats is not None
        return _WritePhase(started_ns, primary.stats, seconds, notes)

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
        sides: list[Side],
        started_at: str,
        write: _WritePhase,
        verifications: list[Verification],
        throttler: dict[str, int],
        injector_stats: list[dict[str, Any]],
    ) -> RunResult:
        scenario = self.scenario
        primary, verification = sides[0], verifications[0]
        latency = write.stats.latency()
        seconds = write.seconds
        throughput = Throughput(
            writes_per_s=verification.acknowledged / seconds if seconds else 0.0,
            records_per_s=sum(write.stats.outcomes.values()) / seconds if seconds else 0.0,
            write_phase_s=round(seconds, 3),
        )
        expectations = check_expectations(scenario.expect, verification, latency, throughput)
        secondary: SecondaryResult | None = None
        if len(sides) == 2:
            other = check_expectations(scenario.expect, verifications[1], latency, throughput)
            expectations += [
                replace(e, name=f"secondary.{e.name}")
                for e in other
                if e.name not in ("p99_ms", "min_writes_per_s")
            ]
            secondary = SecondaryResult(
                profile=sides[1].profile.name,
                keyspace=sides[1].table.keyspace,
                table=sides[1].table.name,
                strategy=scenario.target.secondary.strategy.value if scenario.target.secondary else "",
                verification=verifications[1],
            )
        worst = decide_exit_code(expectations, verification)
        if secondary is not None and worst is ExitCode.OK and secondary.verification.unread_buckets:
            worst = ExitCode.INCONCLUSIVE
        return RunResult(
            run_id=self.run_id,
            scenario=scenario.name,
            seed=self.seed,
            keyspace=primary.table.keyspace,
            table=primary.table.name,
            profile=primary.profile.name,
            pattern=scenario.pattern.name.value,
            started_at=started_at,
            finished_at=rundir.now_iso(),
            verification=verification,
            throughput=throughput,
            latency=latency,
            throttler=throttler,
            expectations=expectations,
            exit_code=worst,
            notes=write.notes,
            injectors=injector_stats,
            secondary=secondary,
        )

    def _save_faults(self, sides: list[Side]) -> None:
        timeline = [
            {"side": side.name, "injector": name, "kind": kind, "start_ns": w.start_ns, "end_ns": w.end_ns}
            for side in sides
            for name, kind, w in side.injectors.windows()
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
            "seed": str(self.seed),
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
    assert side.sessions is not None
    for live in side.sessions.all_sessions():
        for name, value in asdict(live.throttled.stats()).items():
            if name.startswith("max_"):
                totals[name] = max(totals.get(name, 0), value)
            else:
                totals[name] = totals.get(name, 0) + value
    return totals


def _finish_all(sides: list[Side]) -> None:
    """Roll back every side's faults (newest side first); the first failure is raised after all."""
    failure: RollbackFailed | None = None
    for side in reversed(sides):
        try:
            side.injectors.finish()
        except RollbackFailed as error:
            failure = failure or error
    if failure is not None:
        raise failure
