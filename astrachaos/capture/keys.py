"""From a table's key columns and a statement's bound values to a captured key, or a reason why not."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from astrachaos.capture.cells import base_type
from astrachaos.capture.model import WriteKind
from astrachaos.reconcile.schema import encode

SYSTEM_KEYSPACES = frozenset(
    {
        "system",
        "system_schema",
        "system_auth",
        "system_distributed",
        "system_traces",
        "system_views",
        "system_virtual_schema",
        "dse_system",
        "dse_auth",
        "dse_security",
        "dse_leases",
        "dse_insights",
        "dse_perf",
        "solr_admin",
        "cdc_raw",
    }
)


class Reason(StrEnum):
    """Why a write's key cannot be known (counted as unverifiable, never dropped)."""

    LITERALS = "key values are literals in the CQL text, not bound values"
    UNKNOWN_PREPARED = "EXECUTE of a statement prepared before capture started"
    UNKNOWN_TABLE = "the table is not in system_schema"
    UNPARSED = "statement text not understood (bound values cannot be mapped to columns)"
    PARTIAL_KEY = "the statement does not bind the whole primary key (range or partition write)"
    UNSET_KEY = "a primary-key value is unset or null"
    CONDITIONAL = "conditional (LWT) write: whether it applied is in the result rows"
    COLUMN_DELETE = "DELETE of some columns only"
    COMPRESSED = "compressed frame the proxy cannot read"
    KEY_TYPE = "a primary-key column has a type that cannot be bound again"


def is_system_keyspace(keyspace: str | None) -> bool:
    """Whether writes to `keyspace` are the database's own (never captured)."""
    return keyspace is not None and keyspace.lower() in SYSTEM_KEYSPACES


@dataclass(frozen=True)
class TableKeys:
    """A table's primary key: partition columns, clustering columns, and every column's CQL type."""

    keyspace: str
    table: str
    partition: tuple[str, ...]
    clustering: tuple[str, ...]
    types: Mapping[str, str]

    @property
    def primary_key(self) -> tuple[str, ...]:
        """Partition then clustering columns."""
        return self.partition + self.clustering


@dataclass(frozen=True)
class Keyed:
    """A write's key and the digest of the other values it sets."""

    key: dict[str, Any]
    key_types: dict[str, str]
    value_columns: tuple[str, ...]
    value_digest: str | None


BINDABLE = {
    "ascii", "bigint", "blob", "boolean", "date", "decimal", "double", "float", "inet", "int",
    "smallint", "text", "timestamp", "timeuuid", "tinyint", "uuid", "varchar", "varint",
}  # fmt: skip


def key_of(
    keys: TableKeys,
    bound: Sequence[tuple[str, Any]],
    kind: WriteKind,
    *,
    comparable: bool = True,
    literal: Sequence[str] = (),
) -> Keyed | Reason:
    """The key the bound (column, value) pairs name, and the digest of the other values.

    `comparable` False (a collection append, a counter increment) stores no digest: the write is
    then judged on presence only. `literal` names columns the statement sets with literals in its
    text (a key column among them makes the write unverifiable for that reason).
    """
    values = dict(bound)
    missing = [c for c in keys.primary_key if c not in values]
    if missing:
        return Reason.LITERALS if any(c in literal for c in missing) else Reason.PARTIAL_KEY
    key = {c: values[c] for c in keys.primary_key}
    if any(v is None for v in key.values()):
        return Reason.UNSET_KEY
    types = {c: keys.types.get(c, "") for c in keys.primary_key}
    if any(base_type(t) not in BINDABLE for t in types.values()):
        return Reason.KEY_TYPE
    others = {c: v for c, v in values.items() if c not in key}
    digest = value_digest(others) if comparable and kind is not WriteKind.DELETE else None
    return Keyed(key, types, tuple(sorted(others)), digest)


def value_digest(values: Mapping[str, Any]) -> str:
    """A digest of column values, equal for a value as bound and as the Python driver reads it."""
    canonical = json.dumps({c: encode(v) for c, v in values.items()}, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=12).hexdigest()


def table_keys_from_schema(session: Any, keyspace: str, table: str) -> TableKeys | None:
    """The table's key columns and types from `system_schema.columns` (None: no such table)."""
    rows = list(
        session.execute(
            "SELECT column_name, kind, position, type FROM system_schema.columns"
            " WHERE keyspace_name = %s AND table_name = %s",
            (keyspace, table),
        )
    )
    return table_keys_from_rows(keyspace, table, [(r.column_name, r.kind, r.position, r.type) for r in rows])


def table_keys_from_rows(
    keyspace: str, table: str, rows: Sequence[tuple[str, str, int, str]]
) -> TableKeys | None:
    """TableKeys from (column_name, kind, position, type) rows of `system_schema.columns`."""
    if not rows:
        return None

    def ordered(kind: str) -> tuple[str, ...]:
        return tuple(name for name, k, _, _ in sorted((r for r in rows if r[1] == kind), key=lambda r: r[2]))

    return TableKeys(
        keyspace, table, ordered("partition_key"), ordered("clustering"), {r[0]: r[3] for r in rows}
    )
