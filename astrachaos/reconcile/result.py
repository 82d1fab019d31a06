"""What a reconciliation found, as frozen plain data; the CLI renders it and exits with its code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from astrachaos.errors import ExitCode
from astrachaos.reconcile.schema import JsonValue
from astrachaos.reconcile.tokens import TokenRange

SCHEMA_VERSION = 1
Key = Mapping[str, JsonValue]  # key column → JSON-safe value


class Mode(StrEnum):
    """What the table was reconciled against."""

    RUN = "run"
    EXPECTED = "expected"
    TABLES = "tables"


@dataclass(frozen=True)
class ColumnDifference:
    """One column whose value (or writetime, beyond the tolerance) differs between the tables."""

    column: str
    source: JsonValue
    target: JsonValue
    source_writetime: JsonValue = None  # microseconds; a list for a non-frozen collection
    target_writetime: JsonValue = None

    def to_json(self) -> dict[str, JsonValue]:
        """The difference as result.json stores it."""
        return {
            "source": self.source,
            "target": self.target,
            "source_writetime": self.source_writetime,
            "target_writetime": self.target_writetime,
        }


@dataclass(frozen=True)
class RowDifference:
    """A row present on both sides with at least one differing column."""

    key: Key
    columns: tuple[ColumnDifference, ...]

    def to_json(self) -> dict[str, JsonValue]:
        """`{key: {...}, columns: {name: {source, target, ...}}}`."""
        return {"key": dict(self.key), "columns": {c.column: c.to_json() for c in self.columns}}


@dataclass(frozen=True)
class InFlight:
    """A difference that involves a write newer than scan start − grace: not reported as one."""

    key: Key
    kind: str  # missing_in_target | missing_in_source | differing
    newest_writetime: int

    def to_json(self) -> dict[str, JsonValue]:
        """As result.json stores it."""
        return {"key": dict(self.key), "kind": self.kind, "newest_writetime": self.newest_writetime}


@dataclass(frozen=True)
class ReconcileResult:
    """Everything a reconciliation found. `missing` is for run and key-file modes."""

    mode: Mode
    source: str
    target: str
    counts: Mapping[str, int]
    missing: tuple[Mapping[str, JsonValue], ...] = ()
    missing_in_target: tuple[Key, ...] = ()
    missing_in_source: tuple[Key, ...] = ()
    differing: tuple[RowDifference, ...] = ()
    in_flight: tuple[InFlight, ...] = ()
    failed_ranges: tuple[TokenRange, ...] = ()
    settings: Mapping[str, JsonValue] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def differences(self) -> int:
        """Rows missing on a side or differing."""
        return (
            len(self.missing)
            + len(self.missing_in_target)
            + len(self.missing_in_source)
            + len(self.differing)
        )

    @property
    def exit_code(self) -> ExitCode:
        """5 when a range could not be read, else 1 when anything differs, else 0."""
        if self.failed_ranges:
            return ExitCode.INCONCLUSIVE
        return ExitCode.EXPECTATIONS_UNMET if self.differences else ExitCode.OK

    @property
    def verdict(self) -> str:
        """The exit code's meaning in words."""
        code = self.exit_code
        if code is ExitCode.INCONCLUSIVE:
            return f"inconclusive: {len(self.failed_ranges)} token range(s) could not be read"
        if code is ExitCode.EXPECTATIONS_UNMET:
            return "differences found"
        return "equal"

    def to_json_dict(self) -> dict[str, Any]:
        """The result as `result.json` holds it."""
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "command": "reconcile",
            "mode": self.mode.value,
            "exit_code": int(self.exit_code),
            "verdict": self.verdict,
            "source": self.source,
            "target": self.target,
            "settings": dict(self.settings),
            "counts": dict(self.counts),
        }
        if self.mode is Mode.TABLES:
            data["missing_in_target"] = [dict(k) for k in self.missing_in_target]
            data["missing_in_source"] = [dict(k) for k in self.missing_in_source]
            data["differing"] = [d.to_json() for d in self.differing]
            data["in_flight"] = [f.to_json() for f in self.in_flight]
            data["failed_ranges"] = [r.to_json() for r in self.failed_ranges]
        else:
            data["missing"] = [dict(k) for k in self.missing]
        data["notes"] = list(self.notes)
        return data
