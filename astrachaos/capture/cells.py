"""Captured keys and values as serialized cells: the same bytes on the proxy, in the table, at verification.

A write is kept as the CQL serialized bytes its client bound (the proxy never decodes them):

- the key: the primary-key cells in primary-key order, joined by `KeyCodec` (fixed-width types as
  is, variable-width ones but the last with a 4-byte length), and the partition's Murmur3 token;
- the value digest: `cells_digest` of the other bound cells in column-name order (63-bit
  xxh3), `NULL_DIGEST` for a single null; collections, tuples and user types first decoded and
  written canonically (`canonical_cell`), since Cassandra may store them in another order;
- the fingerprint: `fingerprint(key, digest)`, 40 bits, so that sums over a token range fit in a
  SQLite integer and verification can compare whole ranges without looking at single rows.

Verification reads the same columns' bytes undecoded (`reads.RawRows`) and computes the same
three things per row. Keys are decoded to column → value maps only for the records it reports.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Sequence
from typing import Any

import xxhash

from astrachaos.reconcile.schema import encode

FIXED_WIDTH = {
    "int": 4, "bigint": 8, "counter": 8, "timestamp": 8, "uuid": 16, "timeuuid": 16, "boolean": 1,
    "double": 8, "float": 4, "date": 4, "time": 8, "smallint": 2, "tinyint": 1,
}  # fmt: skip
NATIVE = frozenset(FIXED_WIDTH) | {
    "ascii",
    "text",
    "varchar",
    "blob",
    "inet",
    "varint",
    "decimal",
    "duration",
}
NULL_DIGEST = 0x2B0F_31C4_5D1E_77A9  # a single null value (a real digest equals it with odds 2**-63)
_MIN_TOKEN, _MAX_TOKEN = -(2**63), 2**63 - 1
_LENGTH = struct.Struct(">i")
_SHORT = struct.Struct(">H")
_NULL_CELL = b"\xff\xff\xff\xff"
_digest64 = xxhash.xxh3_64_intdigest


def base_type(cql_type: str) -> str:
    """The type text without `frozen<...>`, lower-cased."""
    text = cql_type.strip().lower()
    while text.startswith("frozen<") and text.endswith(">"):
        text = text[len("frozen<") : -1].strip()
    return text


def is_native(cql_type: str) -> bool:
    """Whether the stored bytes of a value of this type are the bytes the client bound."""
    return base_type(cql_type) in NATIVE


class KeyCodec:
    """Joins the primary-key cells of one table into one key, splits it back, computes its token."""

    def __init__(self, types: Sequence[str], partition_columns: int | None) -> None:
        widths = [FIXED_WIDTH.get(base_type(t)) for t in types]
        self.types = tuple(types)
        self.partition_columns = partition_columns
        # The last cell needs no length: it runs to the end of the key.
        self._prefixed = tuple(w is None and i < len(widths) - 1 for i, w in enumerate(widths))
        self._widths = widths
        self.simple = not any(self._prefixed)

    def join(self, cells: Sequence[bytes]) -> bytes:
        """The key: every primary-key cell, in primary-key order."""
        if self.simple:
            return b"".join(cells)
        return b"".join(
            _LENGTH.pack(len(c)) + c if prefixed else c
            for c, prefixed in zip(cells, self._prefixed, strict=True)
        )

    def split(self, key: bytes) -> list[bytes]:
        """The cells of a key made by `join` (ValueError for a key that is not)."""
        cells, at = [], 0
        last = len(self._widths) - 1
        for i, width in enumerate(self._widths):
            if i == last:
                size = len(key) - at
                if width is not None and size != width:
                    raise ValueError("not a key of this table")
            elif self._prefixed[i]:
                (size,) = _LENGTH.unpack_from(key, at)
                at += 4
            else:
                size = width or 0
            if size < 0 or at + size > len(key):
                raise ValueError("not a key of this table")
            cells.append(key[at : at + size])
            at += size
        if at != len(key):
            raise ValueError("not a key of this table")
        return cells

    def token(self, cells: Sequence[bytes]) -> int | None:
        """The Murmur3 token of the partition the key cells name (None: partition columns unknown)."""
        if self.partition_columns is None:
            return None
        return murmur3_token(cells[: self.partition_columns])


def murmur3_token(partition: Sequence[bytes]) -> int:
    """Cassandra's Murmur3Partitioner token of a partition key (one cell, or a composite)."""
    murmur3 = _murmur3()
    if len(partition) == 1:
        data = partition[0]
    else:
        data = b"".join(_SHORT.pack(len(c)) + c + b"\x00" for c in partition)
    token = int(murmur3(data))
    return _MAX_TOKEN if token == _MIN_TOKEN else token


@functools.cache
def _murmur3() -> Any:
    from cassandra.murmur3 import murmur3  # the driver's C function: imported once, not per write

    return murmur3


def cells_digest(cells: Sequence[bytes | None]) -> int:
    """The digest of a write's value cells (or a stored row's), in column-name order; 63 bits."""
    if len(cells) == 1:
        cell = cells[0]
        return NULL_DIGEST if cell is None else _digest64(cell) >> 1
    return _digest64(b"".join(_NULL_CELL if c is None else _LENGTH.pack(len(c)) + c for c in cells)) >> 1


def fingerprint(key: bytes, digest: int) -> int:
    """A write's key and value as 40 bits: sums of a million of them still fit in 63 bits."""
    return _digest64(key, digest) >> 24


def canonical_cell(cell: bytes | None, driver_type: Any) -> bytes | None:
    """A collection, tuple or user-type cell in a canonical form (its driver value as sorted JSON).

    ValueError when the driver cannot read it: such a write is then judged on presence only.
    """
    if cell is None:
        return None
    if driver_type is None:
        raise ValueError("no driver type")
    try:
        value = driver_type.from_binary(cell, 5)
    except Exception as error:
        raise ValueError(str(error)) from error
    return json.dumps(encode(value), sort_keys=True, separators=(",", ":")).encode()


def serialize(value: Any, cql_type: str) -> bytes:
    """A Python value as the driver would bind it to a column of `cql_type`."""
    kind = driver_type(cql_type)
    if kind is None:
        raise ValueError(f"cannot serialize a {cql_type}")
    return bytes(kind.serialize(value, 5))


def decode(cell: bytes | None, cql_type: str) -> Any:
    """A cell as the Python driver reads it (the cell's hex when the type is not known)."""
    if cell is None:
        return None
    kind = driver_type(cql_type)
    if kind is None:
        return cell.hex()
    try:
        return kind.from_binary(cell, 5)
    except Exception:
        return cell.hex()


def driver_type(cql_type: str) -> Any:
    """The driver's type class for a CQL type text (None for types it cannot build from text)."""
    from cassandra import cqltypes

    text = cql_type.strip()
    lower = text.lower()
    if lower.startswith("frozen<") and lower.endswith(">"):
        return driver_type(text[7:-1])
    if "<" not in text:
        return cqltypes._cqltypes.get(lower)
    outer, inner = text.split("<", 1)
    outer = outer.strip().lower()
    if outer not in ("list", "set", "map", "tuple") or not inner.endswith(">"):
        return None
    parts = _split_top(inner[:-1])
    types = [driver_type(p) for p in parts]
    if any(t is None for t in types):
        return None
    return cqltypes._cqltypes[outer].apply_parameters(types)


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "<":
            depth += 1
        elif char == ">":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts
