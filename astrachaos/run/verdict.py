"""The verdict of a run: every budget checked on every side, the exit code decided, the result built.

The one place a `RunResult` is assembled, for a run and for its re-verification alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from astrachaos.errors import ExitCode, worst
from astrachaos.run.result import ExpectationOutcome, RunResult, SecondaryResult, Throughput
from astrachaos.scenario import Expect, Scenario
from astrachaos.verify.classify import RecordClass
from astrachaos.verify.partitions import Verification
from astrachaos.workload.stats import Latency


def check_expectations(
    expect: Expect, v: Verification, latency: Latency, throughput: Throughput
) -> list[ExpectationOutcome]:
    """Every budget the scenario sets, against what was measured."""
    checks: list[ExpectationOutcome] = []
    for name in ("lost", "failed", "dropped", "indeterminate", "overwritten", "corrupted", "duplicated"):
        budget = getattr(expect, name)
        if budget is not None:
            actual = v.counts.get(RecordClass(name), 0)
            checks.append(ExpectationOutcome(name, budget, actual, actual <= budget))
    if expect.unexpected is not None:
        actual = v.counts.get(RecordClass.UNEXPECTED, 0)
        checks.append(
            ExpectationOutcome("unexpected", expect.unexpected, actual, actual <= expect.unexpected)
        )
    if expect.silent is not None:
        checks.append(ExpectationOutcome("silent", expect.silent, v.silent, v.silent <= expect.silent))
    if expect.indeterminate_pct is not None:
        pct = 100 * v.counts.get(RecordClass.INDETERMINATE, 0) / max(1, v.records)
        checks.append(
            ExpectationOutcome(
                "indeterminate_pct",
                expect.indeterminate_pct,
                round(pct, 3),
                pct <= expect.indeterminate_pct,
            )
        )
    if expect.p99_ms is not None:
        checks.append(ExpectationOutcome("p99_ms", expect.p99_ms, latency.p99, latency.p99 <= expect.p99_ms))
    if expect.min_writes_per_s is not None:
        rate = round(throughput.writes_per_s, 1)
        checks.append(
            ExpectationOutcome(
                "min_writes_per_s", expect.min_writes_per_s, rate, rate >= expect.min_writes_per_s
            )
        )
    return checks


def decide_exit_code(expectations: Sequence[ExpectationOutcome], *verifications: Verification) -> ExitCode:
    """A broken budget on what was read proves a problem (1), which unread data cannot undo;
    otherwise unread data on any side leaves the verdict open (5)."""
    if any(not e.met for e in expectations):
        return ExitCode.EXPECTATIONS_UNMET
    return worst(ExitCode.INCONCLUSIVE for v in verifications if v.unread_buckets)


def throughput_of(acknowledged: int, answered: int, seconds: float) -> Throughput:
    """Write-phase throughput from record counts over the phase's length."""
    return Throughput(
        writes_per_s=acknowledged / seconds if seconds > 0 else 0.0,
        records_per_s=answered / seconds if seconds > 0 else 0.0,
        write_phase_s=round(seconds, 3),
    )


@dataclass(frozen=True)
class VerifiedSide:
    """One target of a run after verification: where it wrote and what was read back."""

    profile: str
    keyspace: str
    table: str
    verification: Verification


@dataclass(frozen=True)
class RunFacts:
    """What a run knows besides its verifications: ids, times and the write phase's measures."""

    run_id: str
    random_seed: int
    started_at: str
    finished_at: str
    throughput: Throughput
    latency: Latency
    throttler: dict[str, int] = field(default_factory=dict)
    injectors: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    driver: dict[str, int] = field(default_factory=dict)  # host_downs, expired, duplicate answers


def build_result(
    scenario: Scenario, facts: RunFacts, primary: VerifiedSide, secondary: VerifiedSide | None = None
) -> RunResult:
    """The result of a run (or of its re-verification): budgets checked on every side, exit code.

    The one place a `RunResult` is assembled, so a run and its re-verification agree.
    """
    v = primary.verification
    expectations = check_expectations(scenario.expect, v, facts.latency, facts.throughput)
    second: SecondaryResult | None = None
    if secondary is not None:
        other = check_expectations(scenario.expect, secondary.verification, facts.latency, facts.throughput)
        expectations += [
            replace(e, name=f"secondary.{e.name}")
            for e in other
            if e.name not in ("p99_ms", "min_writes_per_s")  # write-path measures: one per run
        ]
        strategy = scenario.target.secondary.strategy.value if scenario.target.secondary else ""
        second = SecondaryResult(
            secondary.profile, secondary.keyspace, secondary.table, strategy, secondary.verification
        )
    verifications = [v] + ([secondary.verification] if secondary is not None else [])
    return RunResult(
        run_id=facts.run_id,
        scenario=scenario.name,
        random_seed=facts.random_seed,
        keyspace=primary.keyspace,
        table=primary.table,
        profile=primary.profile,
        pattern=str(scenario.pattern.name),
        started_at=facts.started_at,
        finished_at=facts.finished_at,
        verification=v,
        throughput=facts.throughput,
        latency=facts.latency,
        throttler=facts.throttler,
        expectations=expectations,
        exit_code=decide_exit_code(expectations, *verifications),
        notes=facts.notes,
        injectors=facts.injectors,
        secondary=second,
        driver=facts.driver,
    )
