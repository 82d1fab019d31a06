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
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tenacity

from astrachaos import rundir
from astrachaos.applog import ApplicationLog
from astrachaos.channel import WriteChannel
from astrachaos.errors import AstrachaosError, ExitCode
from astrachaos.events import EventBus
from astrachaos.injectors.active import ActiveInjectors
from astrachaos.ledger import Ledger
from astrachaos.patterns.interface import PatternContext, SharedAppState
from astrachaos.patterns.registry import build
from astrachaos.progress import RunProgress
from astrachaos.resettable import ResettableSession
from astrachaos.result import RunResult, Throughput, check_expectations, decide_exit_code
from astrachaos.retry import is_retryable
from astrachaos.scenario import Scenario
from astrachaos.settings import Profile, load_profile
from astrachaos.stats import WriteStats
from astrachaos.table import RunTable, ensure_table, run_table
from astrachaos.verify import PartitionReader, Verification, verify
from astrachaos.workload import RecordPlan
from astrachaos.writers import Writers

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
        self._phase_callback = on_phase
        self._on_phase = self._phase

    def _phase(self, phase: str) -> None:
        self.progress.phase = phase
        self._phase_callback(phase)

    def run(self) -> RunResult:
        """Write, drain, roll back, verify; the ledger and run directory survive any failure."""
        from astrachaos.session import connect

        scenario = self.scenario
        profile = resolve_profile(scenario)
        table = target_table(scenario, profile)
        started_at = _now()
        injectors = ActiveInjectors(scenario.injectors, profile, local_cluster_for(profile), self.seed)
        self._on_phase("connecting")
        overrides = injectors.prepare()
        extra: dict[str, Any] = {}
        if overrides is not None:
            extra = {"contact_points": overrides.contact_points, "port": overrides.port}
            if overrides.address_translator is not None:
                extra["address_translator"] = overrides.address_translator
        try:
            return self._run_connected(profile, table, started_at, injectors, connect, extra)
        finally:
            injectors.close()

    def _run_connected(
        self,
        profile: Profile,
        table: RunTable,
        started_at: str,
        injectors: ActiveInjectors,
        connect: Callable[..., Any],
        extra: dict[str, Any],
    ) -> RunResult:
        scenario = self.scenario
        sessions = ResettableSession(lambda: connect(profile, **extra))
        try:
            ensure_table(
                sessions.current().connection.session,
                table,
                scenario.schema_.replication_factor,
                astra=profile.kind == "astra",
            )
            ledger = Ledger.create(self.dir.ledger, self.run_id, self._meta(profile, table))
            try:
                injectors.attach_ledger(ledger)
                write = self._write(sessions, table, ledger, injectors)
                ledger.flush()
                if self.interrupted:
                    raise Interrupted(
                        f"interrupted; faults rolled back; the ledger is in {self.dir.path} "
                        f"(`astrachaos verify {self.dir.path}` verifies what was written)"
                    )
                verification = self._verify(sessions, table, ledger, write.started_ns)
                ledger.set_meta({"finished_at": _now()})
            finally:
                ledger.close()
            throttler = _throttler_stats(sessions)
        finally:
            sessions.close()
            self._save_faults(injectors)
        result = self._result(profile, table, started_at, write, verification, throttler, injectors)
        rundir.write_result(self.dir, result.to_json_dict())
        return result

    def _write(
        self,
        sessions: ResettableSession,
        table: RunTable,
        ledger: Ledger,
        injectors: ActiveInjectors,
    ) -> _WritePhase:
        scenario = self.scenario
        bus = EventBus()
        ledger.subscribe(bus)
        started_ns = time.monotonic_ns()
        ledger.set_meta({"started_ns": str(started_ns)})
        stats = WriteStats(started_ns)
        stats.subscribe(bus)
        self.progress.subscribe(bus)
        timeout_s = sessions.current().connection.profile.driver.request_timeout_ms / 1000
        channel = WriteChannel(
            sessions,
            table,
            self.run_id,
            scenario.workload.statement,
            scenario.schema_.ttl_s,
            scenario.schema_.buckets,
            bus,
            idempotent=True,
            request_timeout_s=timeout_s,
        )
        channel.hooks = injectors.client_hooks
        app_log = ApplicationLog(self.dir.app_log, bus, scenario.pattern.name.value)
        patterns = self._patterns(channel, app_log)
        plan = RecordPlan(scenario.workload, self.run_id, scenario.schema_.buckets, self.seed)
        writers = Writers(scenario, plan, patterns, channel, bus, self._reset_trigger(sessions), self.stop)
        self._on_phase("writing")
        notes: list[str] = []
        injectors.start()
        try:
            try:
                phase = writers.run()
            except KeyboardInterrupt:
                self.interrupted = True
                self.stop.set()
                phase = writers.run_until_stopped()
            sessions.wait_resets()
            self._on_phase("draining")
            drained = channel.wait_idle(timeout_s + 5)
            if not drained:
                notes.append(f"{channel.in_flight} statements unanswered after {timeout_s + 5:.0f}s")
        finally:
            self._on_phase("rolling back faults")
            injectors.finish()
        injectors.check()
        seconds = (time.monotonic_ns() - started_ns) / 1e9
        app_log.close()
        notes.extend(phase.writer_errors or [])
        if sessions.resets:
            notes.append(f"session reset {sessions.resets} time(s) with requests in flight")
        return _WritePhase(started_ns, stats, seconds, notes)

    def _patterns(self, channel: WriteChannel, app_log: ApplicationLog) -> list[Any]:
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

    def _verify(
        self, sessions: ResettableSession, table: RunTable, ledger: Ledger, started_ns: int
    ) -> Verification:
        self._on_phase("verifying")
        reader = PartitionReader(
            sessions.current().connection.session,
            table,
            self.run_id,
            self.scenario.verify.page_size,
        )
        return verify(
            reader,
            ledger.iter_records(),
            range(self.scenario.schema_.buckets),
            self.scenario.verify,
            started_ns,
            windows=[(w.injector, w.start_ns, w.end_ns) for w in ledger.fault_windows()],
        )

    def _result(
        self,
        profile: Profile,
        table: RunTable,
        started_at: str,
        write: _WritePhase,
        verification: Verification,
        throttler: dict[str, int],
        injectors: ActiveInjectors,
    ) -> RunResult:
        scenario = self.scenario
        latency = write.stats.latency()
        seconds = write.seconds
        throughput = Throughput(
            writes_per_s=verification.acknowledged / seconds if seconds else 0.0,
            records_per_s=sum(write.stats.outcomes.values()) / seconds if seconds else 0.0,
            write_phase_s=round(seconds, 3),
        )
        expectations = check_expectations(scenario.expect, verification, latency, throughput)
        return RunResult(
            run_id=self.run_id,
            scenario=scenario.name,
            seed=self.seed,
            keyspace=table.keyspace,
            table=table.name,
            profile=profile.name,
            pattern=scenario.pattern.name.value,
            started_at=started_at,
            finished_at=_now(),
            verification=verification,
            throughput=throughput,
            latency=latency,
            throttler=throttler,
            expectations=expectations,
            exit_code=decide_exit_code(expectations, verification),
            notes=write.notes,
            injectors=[asdict(s) for s in injectors.stats()],
        )

    def _save_faults(self, injectors: ActiveInjectors) -> None:
        timeline = [
            {"injector": name, "kind": kind, "start_ns": w.start_ns, "end_ns": w.end_ns}
            for name, kind, w in injectors.windows()
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
            "started_at": _now(),
        }


def _attempt_state(attempt: int) -> Any:
    state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return state


def _throttler_stats(sessions: ResettableSession) -> dict[str, int]:
    totals: dict[str, int] = {}
    for live in sessions.all_sessions():
        for name, value in asdict(live.throttled.stats()).items():
            if name.startswith("max_"):
                totals[name] = max(totals.get(name, 0), value)
            else:
                totals[name] = totals.get(name, 0) + value
    return totals


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
