"""Which expected keys a table holds: grouped by partition (IN on clustering) or key by key."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from astrachaos.errors import Inconclusive, UsageProblem
from astrachaos.reconcile.schema import Column, TableSchema, cast, encode

_IN_CHUNK = 100  # clustering values per IN: keeps one request small on the coordinator
_PROGRESS_EVERY = 2000  # statements between two progress reports
KeyProgress = Callable[[int, int], None]  # (keys looked up, unique keys in all)


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
    progress: KeyProgress | None = None,
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
        present = _per_key(session, schema, columns, keys, concurrency, progress)
    else:
        present = _per_partition(session, schema, columns, keys, concurrency, progress)
    missing = tuple(
        {c.name: encode(v) for c, v in zip(columns, key, strict=True)}
        for key in keys
        if _identity(key) not in present
    )
    return Lookup(expected, len(keys), len(keys) - len(missing), missing)


def _execute(
    session: Any, statement: Any, args: Sequence[Any], concurrency: int,
    keys_per_arg: Sequence[int], progress: KeyProgress | None,
) -> list[Any]:  # fmt: skip
    """Every statement at `concurrency`, in slices so progress can be told between them."""
    from cassandra.concurrent import execute_concurrent_with_args

    results: list[Any] = []
    done, total = 0, sum(keys_per_arg)
    for start in range(0, len(args), _PROGRESS_EVERY):
        part = args[start : start + _PROGRESS_EVERY]
        results += execute_concurrent_with_args(session, statement, part, concurrency=concurrency)
        done += sum(keys_per_arg[start : start + _PROGRESS_EVERY])
        if progress is not None:
            progress(done, total)
    return results


def _per_key(
    session: Any, schema: TableSchema, columns: tuple[Column, ...], keys: list[tuple[Any, ...]],
    concurrency: int, progress: KeyProgress | None = None,
) -> set[tuple[Any, ...]]:  # fmt: skip
    where = " AND ".join(f"{c.quoted} = ?" for c in columns)
    statement = session.prepare(f"SELECT {columns[0].quoted} FROM {schema.qualified} WHERE {where} LIMIT 1")
    results = _execute(session, statement, keys, concurrency, [1] * len(keys), progress)
    return {_identity(key) for key, r in zip(keys, results, strict=True) if _rows(r)}


def _per_partition(
    session: Any, schema: TableSchema, columns: tuple[Column, ...], keys: list[tuple[Any, ...]],
    concurrency: int, progress: KeyProgress | None = None,
) -> set[tuple[Any, ...]]:  # fmt: skip
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
    results = _execute(session, statement, args, concurrency, [len(a[-1]) for a in args], progress)
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
