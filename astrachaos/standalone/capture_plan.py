"""How one statement's bound cells become a captured write, without decoding them (see capture/cells.py).

A `WritePlan` is made once per prepared statement (and table schema) or per QUERY text: which
bound value is each primary-key column, which are the other columns (sorted by name), which
need a canonical form (collections, tuples, user types), where a `USING TIMESTAMP ?` is. Per
write the proxy then only joins the key cells, hashes the value cells and appends one row.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from astrachaos.capture.cells import (
    KeyCodec,
    base_type,
    canonical_cell,
    cells_digest,
    driver_type,
    fingerprint,
    is_native,
    murmur3_token,
)
from astrachaos.capture.keys import BINDABLE, Reason, TableKeys
from astrachaos.capture.ledger import CaptureLedger
from astrachaos.capture.model import WriteKind
from astrachaos.proxy.bound import UNSET

_LONG = struct.Struct(">q")


@dataclass(frozen=True)
class WritePlan:
    """Where a statement's key, values and timestamp are among its bound values."""

    keys: TableKeys
    table_id: int
    kind: WriteKind
    codec: KeyCodec
    key_at: tuple[int, ...]
    partition_columns: int
    values: tuple[tuple[str, int], ...]  # (column, bound index), by column name
    canonical: tuple[tuple[int, Any], ...]  # (position in `values`, driver type)
    timestamp_at: int | None
    column_set: int | None  # when every value is set
    comparable: bool

    def cells(
        self, bound: Sequence[bytes | None], timestamp: int | None, ledger: CaptureLedger
    ) -> tuple[int | None, bytes, int | None, int | None, int | None, int | None] | Reason:
        """(token, key, column set, digest, fingerprint, timestamp) of one write, or why not."""
        key_cells = [bound[i] for i in self.key_at]
        for cell in key_cells:
            if cell is UNSET:
                return Reason.PARTIAL_KEY
            if cell is None:
                return Reason.UNSET_KEY
        cells: list[bytes] = key_cells  # type: ignore[assignment]
        key = self.codec.join(cells)
        token = murmur3_token(cells[: self.partition_columns])
        if self.timestamp_at is not None:
            raw = bound[self.timestamp_at]
            if raw is not None and raw is not UNSET and len(raw) == 8:
                timestamp = _LONG.unpack(raw)[0]
        if self.kind is WriteKind.DELETE:
            return token, key, None, None, None, timestamp
        values = [bound[i] for _, i in self.values]
        column_set = self.column_set
        if any(v is UNSET for v in values):
            names = tuple(name for (name, _), v in zip(self.values, values, strict=True) if v is not UNSET)
            column_set = ledger.column_set(self.table_id, names)
            kept = [(p, v) for p, v in enumerate(values) if v is not UNSET]
            positions = {p: n for n, (p, _) in enumerate(kept)}
            canonical = [(positions[p], t) for p, t in self.canonical if p in positions]
            values = [v for _, v in kept]
        else:
            canonical = list(self.canonical)
        comparable = self.comparable
        for position, driver in canonical:
            try:
                values[position] = canonical_cell(values[position], driver)
            except ValueError:
                comparable = False  # a value the driver cannot read: judged on presence only
        if not comparable:
            return token, key, column_set, None, None, timestamp
        digest = cells_digest(values)
        return token, key, column_set, digest, fingerprint(key, digest), timestamp


def plan_of(
    keys: TableKeys, names: Sequence[str], kind: WriteKind, ledger: CaptureLedger, *,
    comparable: bool = True, literal: Sequence[str] = (),
) -> WritePlan | Reason:  # fmt: skip
    """The plan for a statement binding `names` (one per bound value; `[timestamp]`, `[ttl]` too)."""
    where = {name: i for i, name in enumerate(names)}
    missing = [c for c in keys.primary_key if c not in where]
    if missing:
        return Reason.LITERALS if any(c in literal for c in missing) else Reason.PARTIAL_KEY
    types = [keys.types.get(c, "") for c in keys.primary_key]
    if any(base_type(t) not in BINDABLE for t in types):
        return Reason.KEY_TYPE
    key_columns = set(keys.primary_key)
    values = tuple(sorted((n, i) for n, i in where.items() if n not in key_columns and not n.startswith("[")))
    canonical = []
    for position, (name, _) in enumerate(values):
        cql_type = keys.types.get(name, "")
        if not is_native(cql_type):
            canonical.append((position, driver_type(cql_type)))
    table_id = ledger.table_id(keys)
    column_set = (
        None if kind is WriteKind.DELETE else ledger.column_set(table_id, tuple(n for n, _ in values))
    )
    return WritePlan(
        keys=keys, table_id=table_id, kind=kind, codec=KeyCodec(types, len(keys.partition)),
        key_at=tuple(where[c] for c in keys.primary_key), partition_columns=len(keys.partition),
        values=values, canonical=tuple(canonical), timestamp_at=where.get("[timestamp]"),
        column_set=column_set,
        comparable=comparable,
    )  # fmt: skip


_SHORT = struct.Struct(">H")
_INT = struct.Struct(">i")
_VALUES, _PAGE_SIZE, _PAGING_STATE, _SERIAL, _TIMESTAMP, _NAMES = 0x01, 0x04, 0x08, 0x10, 0x20, 0x40
_WITH_KEYSPACE = 0x80


def execute_values(body: bytes, version: int) -> tuple[bytes, list[bytes | None], int | None] | None:
    """(prepared id, bound cells, timestamp) of an EXECUTE body, read with struct alone (the hot path).

    None when the request names its values or is not what it should be: the caller then reads it
    with `proxy.bound.read_bound`. Unset values are `proxy.bound.UNSET`.
    """
    try:
        (size,) = _SHORT.unpack_from(body, 0)
        prepared_id = body[2 : 2 + size]
        at = 2 + size
        if version >= 5:
            (size,) = _SHORT.unpack_from(body, at)
            at += 2 + size
        at += 2  # consistency
        if version >= 5:
            (flags,) = _INT.unpack_from(body, at)
            at += 4
        else:
            flags = body[at]
            at += 1
        if flags & _NAMES:
            return None
        values: list[bytes | None] = []
        if flags & _VALUES:
            (count,) = _SHORT.unpack_from(body, at)
            at += 2
            for _ in range(count):
                (size,) = _INT.unpack_from(body, at)
                at += 4
                if size >= 0:
                    values.append(body[at : at + size])
                    at += size
                else:
                    values.append(UNSET if size == -2 else None)
        if flags & _PAGE_SIZE:
            at += 4
        if flags & _PAGING_STATE:
            (size,) = _INT.unpack_from(body, at)
            at += 4 + max(size, 0)
        if flags & _SERIAL:
            at += 2
        timestamp = _LONG.unpack_from(body, at)[0] if flags & _TIMESTAMP else None
        if at > len(body) or len(prepared_id) != _SHORT.unpack_from(body, 0)[0]:
            return None  # cut short
        return prepared_id, values, timestamp
    except (struct.error, IndexError):
        return None
