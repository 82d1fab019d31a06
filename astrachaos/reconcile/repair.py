"""Repair: write rows missing on one side from the other, with each cell's writetime and TTL.

Never deletes, never overwrites a differing row (which side is right is not knowable here). Rows
are copied column group by column group, one INSERT per distinct (writetime, TTL), so a later
write on the target still wins by last-write-wins. A non-frozen collection takes the newest
writetime of its elements and is written without TTL: the Python driver cannot decode TTL() of a
collection holding an element without TTL (it drops the connection), so a TTL on a collection is
not carried over. Null columns are not written (no tombstones).
A row holding only key columns has no writetime to read: it is
written with the current time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astrachaos.reconcile.result import Key, ReconcileResult
from astrachaos.reconcile.schema import Column, TableSchema, cast
from astrachaos.reconcile.tables import Side

PLAN_FILE = "repair-plan.json"


@dataclass(frozen=True)
class RepairReport:
    """What a repair wrote: rows per side, INSERT statements, and writes that failed."""

    rows_to_target: int
    rows_to_source: int
    statements: int
    failures: int


def write_plan(result: ReconcileResult, out: Path) -> Path:
    """Save `repair-plan.json`: which keys would be written to which side (nothing is written)."""
    plan = {
        "counts": {
            "write_to_target": len(result.missing_in_target),
            "write_to_source": len(result.missing_in_source),
            "differing_not_repaired": len(result.differing),
        },
        "write_to_target": [dict(k) for k in result.missing_in_target],
        "write_to_source": [dict(k) for k in result.missing_in_source],
    }
    path = out / PLAN_FILE
    path.write_text(json.dumps(plan, indent=2, ensure_ascii=False))
    return path


def repair(result: ReconcileResult, source: Side, target: Side, concurrency: int = 32) -> RepairReport:
    """Copy every missing row to the side that lacks it."""
    to_target = _copy(source, target, result.missing_in_target, concurrency)
    to_source = _copy(target, source, result.missing_in_source, concurrency)
    return RepairReport(
        rows_to_target=to_target[0],
        rows_to_source=to_source[0],
        statements=to_target[1] + to_source[1],
        failures=to_target[2] + to_source[2],
    )


def _copy(have: Side, lack: Side, keys: Sequence[Key], concurrency: int) -> tuple[int, int, int]:
    """(rows found and written, statements, failed statements)."""
    if not keys:
        return 0, 0, 0
    from cassandra.cluster import EXEC_PROFILE_DEFAULT
    from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
    from cassandra.query import tuple_factory

    schema = have.schema
    key_columns = schema.primary_key
    values = [c for c in schema.values if _writable(lack.schema, c)]
    fetched = [c.quoted for c in key_columns] + [c.quoted for c in values]
    # TTL() of a non-frozen collection with an element without TTL returns a null inside a list,
    # which the Python driver (3.30) cannot decode and then drops the connection: not read (the
    # WRITETIME in its place keeps positions and is ignored).
    fetched += [f"WRITETIME({c.quoted})" for c in values]
    fetched += [f"{'WRITETIME' if c.multi_cell else 'TTL'}({c.quoted})" for c in values]
    where = " AND ".join(f"{c.quoted} = ?" for c in key_columns)
    select = have.session.prepare(f"SELECT {', '.join(fetched)} FROM {schema.qualified} WHERE {where}")
    profile = have.session.execution_profile_clone_update(EXEC_PROFILE_DEFAULT, row_factory=tuple_factory)
    bound_keys = [tuple(cast(c, key[c.name]) for c in key_columns) for key in keys]
    found = execute_concurrent_with_args(
        have.session, select, bound_keys, concurrency=concurrency, execution_profile=profile
    )
    inserts = _Inserts(lack, key_columns)
    statements: list[tuple[Any, tuple[Any, ...]]] = []
    rows = 0
    for outcome in found:
        if not outcome.success:
            continue
        row = next(iter(outcome.result_or_exc), None)
        if row is None:  # gone from the side that had it since the comparison
            continue
        rows += 1
        statements += _row_statements(inserts, row, len(key_columns), values)
    results = execute_concurrent(
        lack.session, statements, concurrency=concurrency, raise_on_first_error=False
    )
    failures = sum(1 for r in results if not r.success)
    failures += sum(1 for r in found if not r.success)
    return rows, len(statements), failures


def _writable(schema: TableSchema, column: Column) -> bool:
    return any(c.name == column.name and c.cql_type == column.cql_type for c in schema.values)


class _Inserts:
    """Prepared INSERTs, one per set of written columns."""

    def __init__(self, side: Side, keys: tuple[Column, ...]) -> None:
        self._side = side
        self._keys = keys
        self._prepared: dict[tuple[str, ...], Any] = {}

    def get(self, columns: tuple[Column, ...], timed: bool) -> Any:
        names = tuple(c.quoted for c in self._keys + columns) + (("@",) if timed else ())
        if names not in self._prepared:
            listed = [c.quoted for c in self._keys + columns]
            cql = (
                f"INSERT INTO {self._side.schema.qualified} ({', '.join(listed)})"
                f" VALUES ({', '.join('?' * len(listed))})"
            )
            if timed:
                cql += " USING TIMESTAMP ? AND TTL ?"
            self._prepared[names] = self._side.session.prepare(cql)
        return self._prepared[names]


def _row_statements(
    inserts: _Inserts, row: tuple[Any, ...], width: int, values: list[Column]
) -> list[tuple[Any, tuple[Any, ...]]]:
    n = len(values)
    key = row[:width]
    groups: dict[tuple[int, int], list[int]] = {}
    for i in range(n):
        value, written, ttl = row[width + i], row[width + n + i], row[width + 2 * n + i]
        if value is None:
            continue
        stamp, life = _cell_time(written, ttl)
        groups.setdefault((stamp, life), []).append(i)
    if not groups:
        return [(inserts.get((), timed=False), tuple(key))]
    statements = []
    for (stamp, life), indexes in groups.items():
        columns = tuple(values[i] for i in indexes)
        params = (*key, *(row[width + i] for i in indexes), stamp, life)
        statements.append((inserts.get(columns, timed=True), params))
    return statements


def _cell_time(written: Any, ttl: Any) -> tuple[int, int]:
    """(writetime, TTL 0 = none) of a cell; a multi-cell collection gives lists."""
    if isinstance(written, list):
        return max(w for w in written if w is not None), 0
    return int(written), int(ttl or 0)
