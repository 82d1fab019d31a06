"""The result of a run as plain data: counts, non-ok records, budgets met or broken, exit code."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from astrachaos.errors import ExitCode
from astrachaos.verify.classify import RecordClass
from astrachaos.verify.partitions import NotOk, Verification
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
    random_seed: int
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

    @property
    def verdict(self) -> str:
        """One line saying what the exit code means."""
        return verdict_text(self.exit_code)

    @property
    def passed(self) -> bool:
        """Every expectation was met and everything was read."""
        return self.exit_code is ExitCode.OK

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunResult:
        """The result a `result.json` (this or an earlier run's) holds; `to_json_dict` inverted."""
        secondary = data.get("secondary")
        return cls(
            run_id=data["run_id"],
            scenario=data["scenario"],
            random_seed=int(data["seed"]),
            keyspace=data["keyspace"],
            table=data["table"],
            profile=data["profile"],
            pattern=data["pattern"],
            started_at=data["started_at"],
            finished_at=data["finished_at"],
            verification=_verification_of(data),
            throughput=Throughput(**data["throughput"]),
            latency=Latency(**data["latency_ms"]),
            throttler=dict(data.get("throttler") or {}),
            expectations=[ExpectationOutcome(**e) for e in data.get("expectations", [])],
            exit_code=ExitCode(data["exit_code"]),
            notes=list(data.get("notes", [])),
            injectors=list(data.get("injectors") or []),
            secondary=None
            if not secondary
            else SecondaryResult(
                profile=secondary["profile"],
                keyspace=secondary["keyspace"],
                table=secondary["table"],
                strategy=secondary["strategy"],
                verification=_verification_of(secondary),
            ),
        )

    def counts(self) -> dict[str, int]:
        """The headline counts and every class's count, as `result.json` names them."""
        return _counts(self.verification)

    def to_json_dict(self, max_records: int | None = None) -> dict[str, Any]:
        """The documented `result.json` shape (see README, "result.json")."""
        v = self.verification
        counts = self.counts()
        records = v.not_ok if max_records is None else v.not_ok[:max_records]
        return {
            "schema_version": SCHEMA_VERSION,
            "exit_code": int(self.exit_code),
            "verdict": verdict_text(self.exit_code),
            "run_id": self.run_id,
            "scenario": self.scenario,
            "seed": self.random_seed,
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
                "by_writer": nest(v.by_writer),
                "by_error": nest(v.by_error),
                "silent_by_error": dict(v.silent_by_error),
                "by_batch": [
                    {"writer": w, "batch": b, "class": c, "count": n}
                    for (w, b, c), n in sorted(v.by_batch.items())
                ],
                "by_second": nest(v.by_second),
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


def _verification_of(data: dict[str, Any]) -> Verification:
    """A verification as `result.json` records it (a secondary section has no breakdown)."""
    c = data["counts"]
    breakdown = data.get("breakdown") or {}
    read = data.get("verification") or {}
    return Verification(
        counts=Counter({cls: c[cls.value] for cls in RecordClass if c.get(cls.value)}),
        silent=c["silent"],
        app_logged_success=c["app_logged_success"],
        acknowledged=c["acknowledged"],
        records=c["records"],
        present=c["present"],
        not_ok=[_not_ok_of(r) for r in data.get("records", [])],
        by_writer=_unnest(breakdown.get("by_writer", {}), int),
        by_batch=Counter(
            {(b["writer"], b["batch"], b["class"]): b["count"] for b in breakdown.get("by_batch", [])}
        ),
        by_error=_unnest(breakdown.get("by_error", {}), str),
        by_second=_unnest(breakdown.get("by_second", {}), int),
        silent_by_error=Counter(breakdown.get("silent_by_error", {})),
        unread_buckets=list(read.get("unread_buckets", [])),
        reread_consistency=read.get("reread_consistency"),
        rows_read=read.get("rows_read", 0),
        seconds=read.get("seconds", 0.0),
    )


def _not_ok_of(r: dict[str, Any]) -> NotOk:
    return NotOk(
        record_id=r["record_id"],
        bucket=r["key"]["bucket"],
        key=r["key"]["key"],
        record_class=RecordClass(r["class"]),
        silent=r["silent"],
        outcome=r.get("driver_outcome"),
        attempts=r["attempts"],
        error_class=r.get("last_error"),
        error_message=r.get("last_error_message"),
        writer=r.get("writer"),
        batch=r.get("batch"),
        app_logged=r.get("app_logged"),
        found=r["found"],
        faults=tuple(r.get("faults", ())),
    )


def _unnest(nested: dict[str, dict[str, int]], outer: Any) -> Counter[Any]:
    return Counter({(outer(o), inner): n for o, cs in nested.items() for inner, n in cs.items()})


def nest(counter: Any) -> dict[str, dict[str, int]]:
    """A counter keyed by (outer, inner) as {outer: {inner: n}}, both as strings, sorted."""
    out: dict[str, dict[str, int]] = {}
    for (outer, inner), n in sorted(counter.items()):
        out.setdefault(str(outer), {})[str(inner)] = n
    return out


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
