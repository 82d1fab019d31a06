"""Run one scenario: connect, write through the app pattern, drain, verify, return a RunResult.

Execution returns data; it never prints or exits. `on_phase` lets a caller show progress.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tenacity

from astrachaos import rundir
from astrachaos.applog import ApplicationLog
from astrachaos.channel import WriteChannel
from astrachaos.events import EventBus
from astrachaos.ledger import Ledger
from astrachaos.patterns.interface import PatternContext, SharedAppState
from astrachaos.patterns.registry import build
from astrachaos.resettable import ResettableSession
from astrachaos.result import (
    RunResult,
    Throughput,
    check_expectations,
    decide_exit_code,
)
from astrachaos.retry import is_retryable
from astrachaos.scenario import Scenario
from astrachaos.settings import Profile, load_profile
from astrachaos.stats import WriteStats
from astrachaos.table import RunTable, ensure_table, run_table
from astrachaos.verify import PartitionReader, verify
from astrachaos.workload import RecordPlan
from astrachaos.writers import Writers

log = logging.getLogger(__name__)
Phase = Callable[[str], None]


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


class Runner:
    """One run of one scenario, from connection to verdict."""

    def __init__(
        self,
        scenario: Scenario,
        out: Path | None = None,
        on_phase: Phase = lambda phase: None,
        stop: threading.Event | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if scenario.seed is not None else random.randrange(2**31)
        self.run_id = rundir.new_run_id(scenario.name)
        self.dir = rundir.create(out, self.run_id, scenario.model_copy(update={"seed": self.seed}))
        self._on_phase = on_phase
        self.stop = stop or threading.Event()

    def run(self) -> RunResult:
        """Write, drain, verify; the ledger and run directory survive any failure."""
        from astrachaos.session import connect

        scenario = self.scenario
        profile = resolve_profile(scenario)
        table = target_table(scenario, profile)
        started_at = _now()
        self._on_phase("connecting")
        sessions = ResettableSession(lambda: connect(profile))
        try:
            ensure_table(
                sessions.current().connection.session,
                table,
                scenario.schema_.replication_factor,
                astra=profile.kind == "astra",
            )
            ledger = Ledger.create(self.dir.ledger, self.run_id, self._meta(profile, table))
            try:
                started_ns, stats, phase_s, notes = self._write(sessions, table, ledger)
                ledger.flush()
                self._on_phase("verifying")
                reader = PartitionReader(
                    sessions.current().connection.session,
                    table,
                    self.run_id,
                    scenario.verify.page_size,
                )
                verification = verify(
                    reader,
                    ledger.iter_records(),
                    range(scenario.schema_.buckets),
                    scenario.verify,
                    started_ns,
                )
                ledger.set_meta({"finished_at": _now()})
            finally:
                ledger.close()
            throttler = _throttler_stats(sessions)
        finally:
            sessions.close()
        latency = stats.latency()
        acked = verification.acknowledged
        throughput = Throughput(
            writes_per_s=acked / phase_s if phase_s else 0.0,
            records_per_s=sum(stats.outcomes.values()) / phase_s if phase_s else 0.0,
            write_phase_s=round(phase_s, 3),
        )
        expectations = check_expectations(scenario.expect, verification, latency, throughput)
        result = RunResult(
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
            notes=notes,
        )
        rundir.write_result(self.dir, result.to_json_dict())
        return result

    def _write(
        self, sessions: ResettableSession, table: RunTable, ledger: Ledger
    ) -> tuple[int, WriteStats, float, list[str]]:
        scenario = self.scenario
        bus = EventBus()
        ledger.subscribe(bus)
        started_ns = time.monotonic_ns()
        ledger.set_meta({"started_ns": str(started_ns)})
        stats = WriteStats(started_ns)
        stats.subscribe(bus)
        channel = WriteChannel(
            sessions,
            table,
            self.run_id,
            scenario.workload.statement,
            scenario.schema_.ttl_s,
            scenario.schema_.buckets,
            bus,
            idempotent=True,
        )
        app_log = ApplicationLog(self.dir.app_log, bus, scenario.pattern.name.value)
        shared = SharedAppState()
        wait = tenacity.wait_exponential_jitter(multiplier=0.05, max=2.0)
        patterns = [
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
        plan = RecordPlan(scenario.workload, self.run_id, scenario.schema_.buckets, self.seed)
        writers = Writers(
            scenario, plan, patterns, channel, bus, self._reset_trigger(sessions), self.stop
        )
        self._on_phase("writing")
        phase = writers.run()
        sessions.wait_resets()
        self._on_phase("draining")
        drain_s = sessions.current().connection.profile.driver.request_timeout_ms / 1000 + 5
        drained = channel.wait_idle(drain_s)
        phase_s = (time.monotonic_ns() - started_ns) / 1e9
        app_log.close()
        notes = list(phase.writer_errors or [])
        if not drained:
            notes.append(f"{channel.in_flight} statements were still unanswered after {drain_s}s")
        if sessions.resets:
            notes.append(f"session reset {sessions.resets} time(s) with requests in flight")
        return started_ns, stats, phase_s, notes

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
        stats = live.throttled.stats()
        for name, value in vars(stats).items() if hasattr(stats, "__dict__") else _fields(stats):
            if isinstance(value, int):
                if name.startswith("max_"):
                    totals[name] = max(totals.get(name, 0), value)
                else:
                    totals[name] = totals.get(name, 0) + value
    return totals


def _fields(stats: Any) -> list[tuple[str, Any]]:
    import dataclasses

    return [(f.name, getattr(stats, f.name)) for f in dataclasses.fields(stats)]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
