"""Merge one token range of two tables in (token, primary key) order and name what differs.

Rows are tuples `(token, key columns..., compared columns...)` as the scan reads them. Equal rows
cost one tuple comparison; only rows that differ, or partitions that share a token but hold other
keys, are looked at column by column. Memory: the rows of one token (one partition, or a few on a
token collision), never the range.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Row = tuple[Any, ...]


class Finding(StrEnum):
    """How a key differs between source and target."""

    MISSING_IN_TARGET = "missing_in_target"
    MISSING_IN_SOURCE = "missing_in_source"
    DIFFERING = "differing"


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A key that differs, with both rows as read (None on the side that lacks it)."""

    finding: Finding
    key: Row  # the key columns, without the token
    source: Row | None
    target: Row | None


@dataclass
class MergeCounts:
    """Rows read on each side of one range and how many were equal."""

    source_rows: int = 0
    target_rows: int = 0
    equal: int = 0


def same_value(a: Any, b: Any) -> bool:
    """Equality as Cassandra means it for stored values; NaN equals NaN."""
    if a == b:
        return True
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)


def rows_equal(a: Row, b: Row, key_width: int) -> bool:
    """Whether two rows with the same key hold the same values (NaN-aware)."""
    return all(same_value(x, y) for x, y in zip(a[key_width:], b[key_width:], strict=True))


def merge(
    source: Iterator[Row], target: Iterator[Row], key_width: int, counts: MergeCounts
) -> Iterator[Mismatch]:
    """Yield every key that differs; `key_width` counts the token plus the key columns."""
    a = next(source, None)
    b = next(target, None)
    while a is not None or b is not None:
        if a is not None and b is not None:
            if a == b:  # the common case: one tuple comparison, token and key included
                counts.source_rows += 1
                counts.target_rows += 1
                counts.equal += 1
                a = next(source, None)
                b = next(target, None)
                continue
            if a[0] == b[0]:
                if a[:key_width] == b[:key_width]:
                    counts.source_rows += 1
                    counts.target_rows += 1
                    if rows_equal(a, b, key_width):
                        counts.equal += 1
                    else:
                        yield Mismatch(Finding.DIFFERING, a[1:key_width], a, b)
                    a = next(source, None)
                    b = next(target, None)
                    continue
                a, b = yield from _token_group(source, target, a, b, key_width, counts)
                continue
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            counts.source_rows += 1
            yield Mismatch(Finding.MISSING_IN_TARGET, a[1:key_width], a, None)
            a = next(source, None)
        else:
            counts.target_rows += 1
            yield Mismatch(Finding.MISSING_IN_SOURCE, b[1:key_width], None, b)
            b = next(target, None)


def _token_group(
    source: Iterator[Row],
    target: Iterator[Row],
    a: Row,
    b: Row,
    key_width: int,
    counts: MergeCounts,
) -> Generator[Mismatch, None, tuple[Row | None, Row | None]]:
    """Both sides at one token with different keys: compare that token's rows by key.

    Within a token, rows come in clustering order (or partition-key byte order on a collision);
    matching by key avoids re-implementing Cassandra's orderings (DESC, timeuuid, ...).
    """
    token = a[0]
    left: dict[Row, Row] = {}
    right: dict[Row, Row] = {}
    nxt_a: Row | None = a
    while nxt_a is not None and nxt_a[0] == token:
        left[nxt_a[1:key_width]] = nxt_a
        nxt_a = next(source, None)
    nxt_b: Row | None = b
    while nxt_b is not None and nxt_b[0] == token:
        right[nxt_b[1:key_width]] = nxt_b
        nxt_b = next(target, None)
    counts.source_rows += len(left)
    counts.target_rows += len(right)
    for key, row in left.items():
        other = right.pop(key, None)
        if other is None:
            yield Mismatch(Finding.MISSING_IN_TARGET, key, row, None)
        elif rows_equal(row, other, key_width):
            counts.equal += 1
        else:
            yield Mismatch(Finding.DIFFERING, key, row, other)
    for key, row in right.items():
        yield Mismatch(Finding.MISSING_IN_SOURCE, key, None, row)
    return nxt_a, nxt_b
