"""Partition prints: a writer's share of a bucket hashed as planned, matched in bulk against rows read."""

from __future__ import annotations

import struct

import pytest

from astrachaos.events import PartitionPrint, Record
from astrachaos.workload.plan import PlannedRecord, digest_of, payload_for
from astrachaos.workload.prints import PrintKeeper, rows_match, wire_match

BUCKETS = 4
RUN = "run-1"


def _planned(rid: int, writer: int = 0, *, special: bool = False, key: int | None = None) -> PlannedRecord:
    key = rid if key is None else key
    payload = payload_for(RUN, rid, 40, special)
    return PlannedRecord(Record(rid, writer, 0, key % BUCKETS, key, digest_of(key, rid, payload)), payload)


def _prints(*writers: list[PlannedRecord], batch: int = 7) -> dict[int, tuple[PartitionPrint, ...]]:
    """Each bucket's prints, writer by writer, the writers' records planned `batch` at a time."""
    by_bucket: dict[int, list[PartitionPrint]] = {}
    for records in writers:
        keeper = PrintKeeper()
        for start in range(0, len(records), batch):
            keeper.add(records[start : start + batch])
        for print_ in keeper.prints():
            by_bucket.setdefault(print_.bucket, []).append(print_)
    return {bucket: tuple(prints) for bucket, prints in by_bucket.items()}


def _rows(records: list[PlannedRecord], bucket: int) -> list[tuple[object, ...]]:
    """The partition as the driver reads it: (key, record_id, payload, applied) in key order."""
    mine = sorted((p for p in records if p.record.bucket == bucket), key=lambda p: p.record.key)
    return [(p.record.key, p.record.record_id, p.payload, None) for p in mine]


WRITER_0 = [_planned(rid, 0, special=rid % 3 == 0) for rid in range(0, 50)]
WRITER_1 = [_planned(rid, 1) for rid in range(50, 90)]
ALL = WRITER_0 + WRITER_1


@pytest.mark.parametrize("batch", [1, 7, 100])
def test_rows_read_as_planned_match_the_prints_of_every_writer_whatever_the_batches(batch: int) -> None:
    prints = _prints(WRITER_0, WRITER_1, batch=batch)
    for bucket in range(BUCKETS):
        assert rows_match(_rows(ALL, bucket), prints[bucket])


def test_rows_written_by_an_append_once_each_match() -> None:
    prints = _prints(WRITER_0, WRITER_1)
    rows = [(key, rid, payload, [rid]) for key, rid, payload, _ in _rows(ALL, 1)]
    assert rows_match(rows, prints[1])


def _changed(rows: list[tuple[object, ...]], change: str) -> list[tuple[object, ...]]:
    rows = [list(row) for row in rows]  # type: ignore[misc]
    match change:
        case "payload":
            rows[3][2] = str(rows[3][2]) + "!"
        case "null payload":
            rows[3][2] = None
        case "record id":
            rows[3][1] = 1_000
        case "null record id":
            rows[3][1] = None
        case "key":
            rows[3][0] = int(rows[3][0]) + 1  # type: ignore[call-overload]
        case "applied twice":
            rows[3][3] = [rows[3][1], rows[3][1]]
        case "another record appended":
            rows[3][3] = [999]
        case "missing":
            del rows[3]
        case "extra":
            rows.append([10_000, 10_000, "stray", None])
        case "swapped payloads":
            rows[3][2], rows[4][2] = rows[4][2], rows[3][2]
        case "payload split across rows":
            rows[3][2], rows[4][2] = f"{rows[3][2]}\0{rows[4][2]}", ""
    return [tuple(row) for row in rows]


@pytest.mark.parametrize(
    "change",
    ["payload", "null payload", "record id", "null record id", "key", "applied twice",
     "another record appended", "missing", "extra", "swapped payloads", "payload split across rows"],
)  # fmt: skip
def test_any_row_not_as_planned_fails_the_match(change: str) -> None:
    prints = _prints(WRITER_0, WRITER_1)
    rows = _rows(ALL, 2)
    assert rows_match(rows, prints[2])
    assert not rows_match(_changed(rows, change), prints[2])


def test_rows_of_two_writers_in_the_other_writer_order_fail_the_match() -> None:
    # Keys that interleave the writers (timestamps, say): each writer's share is not contiguous.
    first = [_planned(rid, 0, key=rid * 8) for rid in range(20)]
    second = [_planned(rid, 1, key=(rid - 20) * 8 + 4) for rid in range(20, 40)]  # same bucket, between
    prints = _prints(first, second)
    assert [p.records for p in prints[0]] == [20, 20]
    assert not rows_match(_rows(first + second, 0), prints[0])


def test_no_prints_and_no_rows_never_match() -> None:
    prints = _prints(WRITER_0)
    assert not rows_match(_rows(WRITER_0, 0), ())
    assert not rows_match([], prints[0])


def test_a_bucket_with_a_key_beyond_64_bits_gets_no_print() -> None:
    keeper = PrintKeeper()
    keeper.add([_planned(1, key=1), _planned(2, key=2**70 + 2)])
    assert [p.bucket for p in keeper.prints()] == [1]


def _cells(rows: list[tuple[object, ...]]) -> bytes:
    """The rows as a result page carries them (native protocol: [int length][bytes] per cell)."""
    out = b""
    for key, rid, payload, _ in rows:
        text = str(payload).encode()
        out += struct.pack(">iq", 8, key) + struct.pack(">iq", 8, rid) + struct.pack(">i", len(text)) + text
        out += struct.pack(">i", -1)  # `applied`, null
    return out


def test_rows_as_a_page_carries_them_match_the_wire_prints_of_every_writer() -> None:
    prints = _prints(WRITER_0, WRITER_1)
    for bucket in range(BUCKETS):
        rows = _rows(ALL, bucket)
        assert wire_match(len(rows), _cells(rows), prints[bucket])


@pytest.mark.parametrize("change", ["payload", "key", "missing", "extra", "swapped payloads"])
def test_any_row_not_as_planned_fails_the_wire_match(change: str) -> None:
    prints = _prints(WRITER_0, WRITER_1)
    rows = _changed(_rows(ALL, 2), change)
    assert not wire_match(len(rows), _cells(rows), prints[2])


def test_a_writer_of_list_appends_leaves_no_wire_print() -> None:
    keeper = PrintKeeper(wire=False)
    keeper.add(WRITER_0)
    assert all(p.wire is None and p.wire_bytes == 0 for p in keeper.prints())
    rows = _rows(WRITER_0, 0)
    assert not wire_match(len(rows), _cells(rows), keeper.prints()[:1])
