"""The result of a run as plain data: counts, non-ok records, budgets met or broken, exit code."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from astrachaos.errors import ExitCode
from astrachaos.scenario import Expect
from astrachaos.verify.classify import RecordClass
from astrachaos.verify.partitions import Verification
from astrachaos.workload.stats import Latency

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ExpectationOutcome:
    """One budget of the scenario, checked."""

    name: str
    budget: float
    actual: float
    met: bool


@dataclass(frozen=True)
class Throughput:
    """Write-phase throughput."""

    writes_per_s: float  # acknowledged records per second of the write phase
    records_per_s: float  # records answered (any outcome) per second
    write_phase_s: float


@dataclass(frozen=True)
class SecondaryResult:
    """The second target of a dual write, verified against the same ledger of intents."""

    profile: str
    keyspace: str
    table: str
    strategy: str
    verification: Verification


@dataclass(frozen=True)
class RunResult:
    """Everything a report needs; what `result.json` holds."""

    run_id: str
    scenario: str
    seed: int
    keyspace: str
    table: str
    profile: str
    pattern: str
    started_at: str
    finished_at: str
    verification: Verification
    throughput: Throughput
    latency: Latency
    throttler: dict[str, int]
    expectations: list[ExpectationOutcome]
    exit_code: ExitCode
    notes: list[str] = field(default_factory=list)
    injectors: list[dict[str, Any]] = field(default_factory=list)
    secondary: SecondaryResult | None = None
    driver: dict[str, int] = field(default_factory=dict)  # host_downs, duplicate answers, ...

    def to_json_dict(self, max_records: int | None = None) -> dict[str, Any]:
        """The documented `result.json` shape (see README, "result.json")."""
        v = self.verification
        counts = _counts(v)
        records = v.not_ok if max_records is None else v.not_ok[:max_records]
        return {
            "schema_version": SCHEMA_VERSION,
            "exit_code": int(self.exit_code),
            "verdict": verdict_text(self.exit_code),
            "run_id": self.run_id,
            "scenario": self.scenario,
            "seed": self.seed,
            "profile": self.profile,
            "pattern": self.pattern,
            "keyspace": self.keyspace,
            "table": self.table,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "counts": counts,
            "records": [
                {
                    "key": {"run_id": self.run_id, "bucket": r.bucket, "key": r.key},
                    "record_id": r.record_id,
                    "class": r.record_class.value,
                    "silent": r.silent,
                    "driver_outcome": r.outcome,
                    "last_error": r.error_class,
                    "last_error_message": r.error_message,
                    "attempts": r.attempts,
                    "writer": r.writer,
                    "batch": r.batch,
                    "app_logged": r.app_logged,
                    "found": r.found,
                    "faults": list(r.faults),
                }
                for r in records
            ],
            "breakdown": {
                "by_writer": _nest(v.by_writer),
                "by_error": _nest(v.by_error),
                "silent_by_error": dict(v.silent_by_error),
                "by_batch": [
                    {"writer": w, "batch": b, "class": c, "count": n}
                    for (w, b, c), n in sorted(v.by_batch.items())
                ],
                "by_second": _nest(v.by_second),
            },
            "throughput": asdict(self.throughput),
            "latency_ms": asdict(self.latency),
            "throttler": self.throttler,
            "driver": self.driver,
            "verification": {
                "rows_read": v.rows_read,
                "seconds": round(v.seconds, 3),
                "reread_consistency": v.reread_consistency,
                "unread_buckets": v.unread_buckets,
            },
            "injectors": self.injectors,
            "secondary": None if self.secondary is None else _secondary(self, self.secondary, max_records),
            "expectations": [asdict(e) for e in self.expectations],
            "notes": self.notes,
        }


def _nest(counter: Any) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (outer, inner), n in sorted(counter.items()):
        out.setdefault(str(outer), {})[str(inner)] = n
    return out


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


def decide_exit_code(expectations: list[ExpectationOutcome], v: Verification) -> ExitCode:
    """Broken budgets on what was read prove a problem (1); unread data leaves it open (5)."""
    if any(not e.met for e in expectations):
        return ExitCode.EXPECTATIONS_UNMET
    if v.unread_buckets:
        return ExitCode.INCONCLUSIVE
    return ExitCode.OK


def verdict_text(code: ExitCode) -> str:
    """A one-line meaning of an exit code for reports."""
    return {
        ExitCode.OK: "all expectations met",
        ExitCode.EXPECTATIONS_UNMET: "expectations unmet: data lost or a budget broken",
        ExitCode.INCONCLUSIVE: "inconclusive: verification could not read everything",
        ExitCode.INTERRUPTED: "interrupted",
    }.get(code, code.name.lower().replace("_", " "))


def _counts(v: Verification) -> dict[str, int]:
    counts: dict[str, int] = {
        "records": v.records,
        "app_logged_success": v.app_logged_success,
        "acknowledged": v.acknowledged,
        "present": v.present,
        "silent": v.silent,
    }
    counts.update({c.value: v.counts.get(c, 0) for c in RecordClass})
    return counts


def _secondary(result: RunResult, side: SecondaryResult, max_records: int | None) -> dict[str, Any]:
    """The secondary target's counts and non-ok records, and where the two sides diverge."""
    v = side.verification
    records = v.not_ok if max_records is None else v.not_ok[:max_records]
    primary_bad = {r.record_id for r in result.verification.not_ok if r.record_id is not None}
    secondary_bad = {r.record_id for r in v.not_ok if r.record_id is not None}
    only_secondary = sorted(secondary_bad - primary_bad)
    only_primary = sorted(primary_bad - secondary_bad)
    return {
        "profile": side.profile,
        "keyspace": side.keyspace,
        "table": side.table,
        "strategy": side.strategy,
        "counts": _counts(v),
        "records": [
            {
                "key": {"run_id": result.run_id, "bucket": r.bucket, "key": r.key},
                "record_id": r.record_id,
                "class": r.record_class.value,
                "silent": r.silent,
                "last_error": r.error_class,
                "attempts": r.attempts,
                "found": r.found,
                "faults": list(r.faults),
            }
            for r in records
        ],
        "divergence": {
            "not_ok_only_on_secondary": len(only_secondary),
            "not_ok_only_on_primary": len(only_primary),
            "first_record_ids_only_on_secondary": only_secondary[:20],
            "first_record_ids_only_on_primary": only_primary[:20],
        },
    }
