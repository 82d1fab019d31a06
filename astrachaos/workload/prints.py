"""Partition prints: what one writer planned in one bucket, hashed so that a read can match it in bulk.

Verification must tell whether a partition holds exactly the rows the run planned there. Row by row
that is a digest of each row read (`plan.digest_of`): a formatted string, its encoding and a hash,
about half a microsecond of Python per row, more than the driver spends decoding it. A print says
the same of a writer's whole share of a partition at once, two ways:

- `columns`: the hashes of its keys and record ids packed as 64-bit integers and of its payloads
  joined, in planning order; rows the driver decoded match it with a few C-level operations per
  row (`rows_match`);
- `wire`: the hash of its rows exactly as the node sends them in a result page (the cells of
  `RunTable.partition_cql`'s columns: key, record_id, payload, a null `applied`), and their length;
  pages kept as bytes (`driver.wire`) match it without any row being decoded (`wire_match`). Kept
  only for statements that leave `applied` null (not for list appends).

A partition that matches neither is digested row by row, as before: a print can only save work,
never change a verdict. The writer's planning order is the partition's clustering (key) order when
keys grow with record ids and each writer owns a contiguous range of them (unique keys); with keys
from timestamps or shared by writers the prints rarely match and the rows are digested.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from xxhash import xxh3_64

from astrachaos.events import PartitionPrint
from astrachaos.workload.plan import PlannedRecord

_SEPARATOR = "\0"  # after every payload; a payload of the plan never holds one
_NATIVE_LITTLE = sys.byteorder == "little"
_INT64_CELL = (8).to_bytes(4, "big")  # a bigint cell's length
_NULL_CELL = (-1).to_bytes(4, "big", signed=True)


@dataclass
class _Running:
    """One writer's share of one bucket, hashed as it is planned."""

    records: int = 0
    keys: Any = field(default_factory=xxh3_64)
    record_ids: Any = field(default_factory=xxh3_64)
    payloads: Any = field(default_factory=xxh3_64)
    wire: Any = field(default_factory=xxh3_64)
    wire_bytes: int = 0


class PrintKeeper:
    """The prints of one writer's records, bucket by bucket, fed batch by batch as they are planned.

    `wire`: also hash the rows as the node will send them (statements that leave `applied` null).
    """

    def __init__(self, wire: bool = True) -> None:
        self._wire = wire
        self._buckets: dict[int, _Running] = {}
        self._unprintable: set[int] = set()  # a key or id beyond 64 bits: those buckets get no print

    def add(self, batch: Sequence[PlannedRecord]) -> None:
        """Hash a batch's records into their buckets' prints, in planning order."""
        buckets, wire = self._buckets, self._wire
        for planned in batch:
            record = planned.record
            running = buckets.get(record.bucket)
            if running is None:
                running = buckets[record.bucket] = _Running()
            try:
                key = record.key.to_bytes(8, "big", signed=True)
                record_id = record.record_id.to_bytes(8, "big", signed=True)
            except OverflowError:
                self._unprintable.add(record.bucket)
                continue
            payload = planned.payload.encode()
            running.records += 1
            running.keys.update(key[::-1])  # little-endian, as `array` packs on most machines
            running.record_ids.update(record_id[::-1])
            running.payloads.update(payload + b"\0")
            if wire:
                cells = b"".join((_INT64_CELL, key, _INT64_CELL, record_id, len(payload).to_bytes(4, "big"),
                                  payload, _NULL_CELL))  # fmt: skip
                running.wire.update(cells)
                running.wire_bytes += len(cells)

    def prints(self) -> tuple[PartitionPrint, ...]:
        """The print of every bucket this writer planned in and could print."""
        return tuple(
            PartitionPrint(
                bucket,
                running.records,
                _columns(running.keys, running.record_ids, running.payloads),
                running.wire_bytes if self._wire else 0,
                running.wire.hexdigest() if self._wire else None,
            )
            for bucket, running in sorted(self._buckets.items())
            if bucket not in self._unprintable
        )


def rows_match(rows: Sequence[Sequence[Any]], prints: Sequence[PartitionPrint]) -> bool:
    """Whether partition rows (key, record_id, payload, applied) in key order are what the prints say.

    True only if the rows are, writer after writer, exactly the records each planned there, in
    planning order, each applied once (`applied` null, or holding its own record id once).
    """
    if not prints or not rows or sum(p.records for p in prints) != len(rows):
        return False
    keys, record_ids, payloads, applied = zip(*rows, strict=False)  # a short row fails the match
    if applied.count(None) != len(applied) and list(applied) != [[rid] for rid in record_ids]:
        return False
    start = 0
    for print_ in prints:
        end = start + print_.records
        if _columns_of(keys[start:end], record_ids[start:end], payloads[start:end]) != print_.columns:
            return False
        start = end
    return True


def wire_match(rows: int, cells: bytes, prints: Sequence[PartitionPrint]) -> bool:
    """Whether a partition's rows as the node sent them (how many, their cells) are what the prints say."""
    if not prints or any(p.wire is None for p in prints):
        return False
    if rows != sum(p.records for p in prints) or len(cells) != sum(p.wire_bytes for p in prints):
        return False
    view, start = memoryview(cells), 0
    for print_ in prints:
        end = start + print_.wire_bytes
        if xxh3_64(view[start:end]).hexdigest() != print_.wire:
            return False
        start = end
    return True


def _columns_of(keys: Sequence[Any], record_ids: Sequence[Any], payloads: Sequence[Any]) -> str | None:
    """The columns print of rows read; None when a value cannot be in one (a null)."""
    try:
        packed_keys, packed_ids = array("q", keys), array("q", record_ids)
        joined = (_SEPARATOR.join(payloads) + _SEPARATOR).encode()
    except (TypeError, OverflowError, UnicodeEncodeError):  # a null, a key past 64 bits, a lone surrogate
        return None
    if not _NATIVE_LITTLE:
        packed_keys.byteswap()
        packed_ids.byteswap()
    return _columns(xxh3_64(packed_keys.tobytes()), xxh3_64(packed_ids.tobytes()), xxh3_64(joined))


def _columns(keys: Any, record_ids: Any, payloads: Any) -> str:
    return f"{keys.hexdigest()}{record_ids.hexdigest()}{payloads.hexdigest()}"
