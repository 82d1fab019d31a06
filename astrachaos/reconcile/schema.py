"""A table's columns as `system_schema.columns` describes them; typing key text and JSON-safe values."""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from astrachaos.errors import EnvironmentProblem, UsageProblem

JsonValue = Any  # str | int | float | bool | None | list | dict, as json.dumps accepts
_IDENTIFIER = re.compile(r"^[a-zA-Z][a-zA-Z0-9_]{0,47}$")
_INTS = {"int", "bigint", "smallint", "tinyint", "varint", "counter"}
_COLLECTION = re.compile(r"^(list|set|map)<")


@dataclass(frozen=True)
class Column:
    """One column: its name, CQL type text, and kind (partition_key, clustering, regular, static)."""

    name: str
    cql_type: str
    kind: str

    @property
    def multi_cell(self) -> bool:
        """A non-frozen collection: WRITETIME/TTL return one value per element."""
        return bool(_COLLECTION.match(self.cql_type))

    @property
    def quoted(self) -> str:
        """The name as CQL needs it (quoted when not a plain lower-case identifier)."""
        return quote(self.name)


@dataclass(frozen=True)
class TableSchema:
    """Key and value columns of one table, in primary-key order."""

    keyspace: str
    table: str
    partition_key: tuple[Column, ...]
    clustering: tuple[Column, ...]
    values: tuple[Column, ...]  # regular and static columns, by name

    @property
    def qualified(self) -> str:
        """`keyspace.table` for CQL."""
        return f"{quote(self.keyspace)}.{quote(self.table)}"

    @property
    def primary_key(self) -> tuple[Column, ...]:
        """Partition key columns, then clustering columns."""
        return self.partition_key + self.clustering

    def column(self, name: str) -> Column:
        """The column called `name`, or a UsageProblem naming the table's columns."""
        for column in self.primary_key + self.values:
            if column.name == name:
                return column
        names = ", ".join(c.name for c in self.primary_key + self.values)
        raise UsageProblem(f"{self.keyspace}.{self.table} has no column {name!r} (it has {names})")

    def select_values(self, names: Sequence[str] | None) -> tuple[Column, ...]:
        """The value columns to compare: all regular/static ones, or the named ones."""
        if names is None:
            return self.values
        chosen = tuple(self.column(n) for n in names)
        keys = [c.name for c in chosen if c.kind in ("partition_key", "clustering")]
        if keys:
            raise UsageProblem(f"--columns names key columns ({', '.join(keys)}); keys are always compared")
        return chosen


def quote(name: str) -> str:
    """A CQL identifier: as is when lower-case and plain, double-quoted otherwise."""
    if _IDENTIFIER.match(name) and name == name.lower():
        return name
    return '"' + name.replace('"', '""') + '"'


def parse_table(text: str, default_profile: str) -> tuple[str, str, str]:
    """`[PROFILE:]KEYSPACE.TABLE` → (profile, keyspace, table)."""
    profile, _, rest = text.rpartition(":")
    keyspace, dot, table = rest.partition(".")
    if not dot or not keyspace or not table:
        raise UsageProblem(f"{text!r} is not [PROFILE:]KEYSPACE.TABLE")
    return profile or default_profile, keyspace, table


def read_schema(session: Any, keyspace: str, table: str) -> TableSchema:
    """Read the table's columns from `system_schema.columns`; an unknown table → EnvironmentProblem."""
    rows = list(
        session.execute(
            "SELECT column_name, kind, position, type FROM system_schema.columns"
            " WHERE keyspace_name = %s AND table_name = %s",
            (keyspace, table),
        )
    )
    if not rows:
        raise EnvironmentProblem(f"table {keyspace}.{table} does not exist (no columns in system_schema)")

    def ordered(kind: str) -> tuple[Column, ...]:
        chosen = sorted((r for r in rows if r.kind == kind), key=lambda r: r.position)
        return tuple(Column(r.column_name, r.type, r.kind) for r in chosen)

    values = sorted(
        (Column(r.column_name, r.type, r.kind) for r in rows if r.kind in ("regular", "static")),
        key=lambda c: c.name,
    )
    return TableSchema(keyspace, table, ordered("partition_key"), ordered("clustering"), tuple(values))


def cast(column: Column, value: Any) -> Any:
    """A key value from a file (text, or a JSON scalar) as the driver binds it for `column`'s type.

    Also reads back what `encode` wrote, so keys in result.json can be used to repair.
    """
    kind = _base(column.cql_type)
    if value is None:
        return None
    try:
        if kind in _INTS:
            if isinstance(value, bool):
                raise ValueError("a boolean is not an integer")
            return int(value) if isinstance(value, int) else int(str(value).strip())
        if kind in ("float", "double"):
            return float(value)
        if kind == "decimal":
            return decimal.Decimal(str(value).strip())
        if kind in ("uuid", "timeuuid"):
            return uuid.UUID(str(value).strip())
        if kind == "boolean":
            return _boolean(value)
        if kind == "timestamp":
            return _timestamp(value)
        if kind == "date":
            return dt.date.fromisoformat(str(value).strip())
        if kind == "blob":
            text = str(value).strip()
            return bytes.fromhex(text[2:] if text.startswith("0x") else text)
        if kind == "inet":
            return str(ipaddress.ip_address(str(value).strip()))
        if kind in ("text", "varchar", "ascii"):
            return value if isinstance(value, str) else json.dumps(value)
    except (ValueError, ArithmeticError) as error:
        raise UsageProblem(
            f"column {column.name} ({column.cql_type}): cannot read {value!r}: {error}"
        ) from None
    raise UsageProblem(f"column {column.name}: keys of type {column.cql_type} are not supported")


def encode(value: Any) -> JsonValue:
    """A value read by the driver as JSON: uuid/decimal/timestamps as strings, blobs as hex."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, (uuid.UUID, decimal.Decimal, dt.date, dt.time)):
        return str(value)
    if isinstance(value, Mapping):
        return {_key_text(encode(k)): encode(v) for k, v in value.items()}
    if hasattr(value, "_fields"):  # a user-defined type as a named tuple
        return {name: encode(getattr(value, name)) for name in value._fields}
    if isinstance(value, (list, tuple, set, frozenset)) or hasattr(value, "__iter__"):
        return [encode(v) for v in value]
    return str(value)  # Date, Time, Duration and inet from the driver print as CQL literals


def _key_text(value: JsonValue) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _base(cql_type: str) -> str:
    text = cql_type.strip()
    if text.startswith("frozen<") and text.endswith(">"):
        text = text[len("frozen<") : -1]
    return text.lower()


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError("not a boolean")


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC)  # epoch milliseconds, as CQL
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
