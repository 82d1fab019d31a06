"""Which expected keys a table holds: grouped by partition (IN on clustering) or key by key."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from astrachaos.errors import Inconclusive, UsageProblem
from astrachaos.reconcile.schema import Column, TableSchema, cast, encode

_IN_CHUNK = 100  # clustering values per IN: keeps one request small on the coordinator


class Strategy(StrEnum):
    """How keys are looked up: per partition with IN on clustering columns, or per key."""

    PARTITION = "partition"
    KEY = "key"


@dataclass(frozen=True)
class Lookup:
    """The outcome: unique keys, how many are present, and the absent ones (JSON-safe)."""

    expected: int
    unique: int
    present: int
    missing: tuple[dict[str, Any], ...]


def key_columns(schema: TableSchema, names: Sequence[str]) -> tuple[Column, ...]:
    """The key columns `names` refers to: the partition key plus a prefix of the clustering."""
    columns = tuple(schema.column(n) for n in names)
    pk = schema.partition_key
    wanted = set(names)
    if not all(c.name in wanted for c in pk):
        raise UsageProblem(f"--key must include the whole partition key ({', '.join(c.name for c in pk)})")
    clustering = [c for c in schema.clustering if c.name in wanted]
    if [c.name for c in clustering] != [c.name for c in schema.clustering[: len(clustering)]]:
        raise UsageProblem("--key may name only a prefix of the clustering columns, in order")
    extra = [c.name for c in columns if c.kind not in ("partition_key", "clustering")]
    if extra:
        raise UsageProblem(f"--key names non-key columns: {', '.join(extra)}")
    return pk + tuple(clustering)


def lookup(
    session: Any,
    schema: TableSchema,
    columns: tuple[Column, ...],
    raw_keys: Iterable[dict[str, Any]],
    strategy: Strategy,
    concurrency: int,
) -> Lookup:
    """Type every key by the table's column types, look each unique key up once."""
    expected = 0
    unique: dict[tuple[Any, ...], None] = {}
    for raw in raw_keys:
        expected += 1
        unique.setdefault(tuple(cast(c, raw[c.name]) for c in columns), None)
    keys = list(unique)
    width = len(schema.partition_key)
    if strategy is Strategy.KEY or len(columns) == width:
        present = _per_key(session, schema, columns, keys, concurrency)
    else:
        present = _per_partition(session, schema, columns, keys, concurrency)
    missing = tuple(
        {c.name: encode(v) for c, v in zip(columns, key, strict=True)}
        for key in keys
        if _identity(key) not in present
    )
    return Lookup(expected, len(keys), len(keys) - len(missing), missing)


def _per_key(
    session: Any, schema: TableSchema, columns: tuple[Column, ...], keys: list[tuple[Any, ...]],
    concurrency: int,
) -> set[tuple[Any, ...]]:  # fmt: skip
    from cassandra.concurrent import execute_concurrent_with_args

    where = " AND ".join(f"{c.quoted} = ?" for c in columns)
    statement = session.prepare(f"SELECT {columns[0].quoted} FROM {schema.qualified} WHERE {where} LIMIT 1")
    results = execute_concurrent_with_args(session, statement, keys, concurrency=concurrency)
    return {_identity(key) for key, r in zip(keys, results, strict=True) if _rows(r)}


def _per_partition(
    session: Any, schema: TableSchema, columns: tuple[Column, ...], keys: list[tuple[Any, ...]],
    concurrency: int,
) -> set[tuple[Any, ...]]:  # fmt: skip
    from cassandra.concurrent import execute_concurrent_with_args

    width = len(schema.partition_key)
    pk, ck = columns[:width], columns[width:]
    where = " AND ".join(f"{c.quoted} = ?" for c in pk)
    selected = ", ".join(c.quoted for c in ck)
    in_clause = ck[0].quoted if len(ck) == 1 else "(" + selected + ")"
    statement = session.prepare(
        f"SELECT {selected} FROM {schema.qualified} WHERE {where} AND {in_clause} IN ?"
    )
    by_partition: dict[tuple[Any, ...], list[Any]] = {}
    for key in keys:
        rest = key[width:]
        by_partition.setdefault(key[:width], []).append(rest[0] if len(ck) == 1 else rest)
    args = [
        (*partition, values[i : i + _IN_CHUNK])
        for partition, values in by_partition.items()
        for i in range(0, len(values), _IN_CHUNK)
    ]
    results = execute_concurrent_with_args(session, statement, args, concurrency=concurrency)
    present: set[tuple[Any, ...]] = set()
    for arg, result in zip(args, results, strict=True):
        for row in _rows(result):
            present.add(_identity((*arg[:width], *tuple(row))))
    return present


def _identity(key: tuple[Any, ...]) -> tuple[Any, ...]:
    # Keys typed from a file and values the driver returns can differ in Python type (an aware
    # datetime vs a naive UTC one, date vs the driver's Date): compare their JSON forms.
    return tuple(encode(v) for v in key)


def _rows(result: Any) -> list[Any]:
    if not result.success:
        raise Inconclusive(f"a key lookup failed: {result.result_or_exc}")
    return list(result.result_or_exc)
