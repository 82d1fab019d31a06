"""Partition prints: what one writer planned in one bucket, in three hashes a read can match in bulk.

Verification must tell whether a partition holds exactly the rows the run planned there. Row by row
that is a digest of each row read (`plan.digest_of`): a formatted string, its encoding and a hash,
about half a microsecond of Python per row, more than the driver spends decoding it. A print says
the same of a writer's whole share of a partition at once: the hashes of its keys and its record
ids packed as 64-bit integers, and of its payloads joined, in the order they were planned. A read
partition is checked against the prints of its writers with a few C-level operations per row
(`rows_match`); one that does not match is digested row by row, as before, so a print can only
ever save work, never change a verdict.

The writer's planning order is the partition's clustering (key) order when keys grow with record
ids and each writer owns a contiguous range of them (unique keys); with keys from timestamps or
shared by writers the prints rarely match and the rows are digested.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from xxhash import xxh3_64

from astrachaos.workload.plan import PlannedRecord

_SEPARATOR = "\0"  # after every payload; a payload of the plan never holds one
_NATIVE_LITTLE = sys.byteorder == "little"

# (records, print) of each writer that planned in one bucket, in writer order
BucketPrints = tuple[tuple[int, str], ...]


@dataclass
class _Running:
    """One writer's share of one bucket, hashed as it is planned."""

    records: int = 0
    keys: Any = field(default_factory=xxh3_64)
    record_ids: Any = field(default_factory=xxh3_64)
    payloads: Any = field(default_factory=xxh3_64)


class PrintKeeper:
    """The prints of one writer's records, bucket by bucket, fed batch by batch as they are planned."""

    def __init__(self) -> None:
        self._buckets: dict[int, _Running] = {}
        self._unprintable: set[int] = set()  # a key or id beyond 64 bits: those buckets get no print

    def add(self, batch: Sequence[PlannedRecord]) -> None:
        """Hash a batch's records into their buckets' prints, in planning order."""
        buckets = self._buckets
        for planned in batch:
            record = planned.record
            running = buckets.get(record.bucket)
            if running is None:
                running = buckets[record.bucket] = _Running()
            try:
                key = record.key.to_bytes(8, "little", signed=True)
                record_id = record.record_id.to_bytes(8, "little", signed=True)
            except OverflowError:
                self._unprintable.add(record.bucket)
                continue
            running.records += 1
            running.keys.update(key)
            running.record_ids.update(record_id)
            running.payloads.update((planned.payload + _SEPARATOR).encode())

    def prints(self) -> tuple[tuple[int, int, str], ...]:
        """(bucket, records, print) of every bucket this writer planned in and could print."""
        return tuple(
            (bucket, running.records, _joined(running.keys, running.record_ids, running.payloads))
            for bucket, running in sorted(self._buckets.items())
            if bucket not in self._unprintable
        )


def rows_match(rows: Sequence[Sequence[Any]], prints: BucketPrints) -> bool:
    """Whether partition rows (key, record_id, payload, applied) in key order are what the prints say.

    True only if the rows are, writer after writer, exactly the records each planned there, in
    planning order, each applied once (`applied` null, or holding its own record id once).
    """
    if not prints or not rows or sum(records for records, _ in prints) != len(rows):
        return False
    keys, record_ids, payloads, applied = zip(*rows, strict=False)  # a short row fails the match
    if applied.count(None) != len(applied) and list(applied) != [[rid] for rid in record_ids]:
        return False
    start = 0
    for records, expected in prints:
        end = start + records
        if _print_of(keys[start:end], record_ids[start:end], payloads[start:end]) != expected:
            return False
        start = end
    return True


def _print_of(keys: Sequence[Any], record_ids: Sequence[Any], payloads: Sequence[Any]) -> str | None:
    """The print of rows read, column by column; None when a value cannot be in one (a null)."""
    try:
        packed_keys, packed_ids = array("q", keys), array("q", record_ids)
        joined = (_SEPARATOR.join(payloads) + _SEPARATOR).encode()
    except (TypeError, OverflowError, UnicodeEncodeError):  # a null, a key past 64 bits, a lone surrogate
        return None
    if not _NATIVE_LITTLE:
        packed_keys.byteswap()
        packed_ids.byteswap()
    return _joined(xxh3_64(packed_keys.tobytes()), xxh3_64(packed_ids.tobytes()), xxh3_64(joined))


def _joined(keys: Any, record_ids: Any, payloads: Any) -> str:
    return f"{keys.hexdigest()}{record_ids.hexdigest()}{payloads.hexdigest()}"
