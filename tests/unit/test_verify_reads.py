"""Verification's first reads: rows digested inline as `digest_of` would, partitions joined in any order."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from astrachaos.driver.table import RunTable
from astrachaos.events import DriverOutcome, EventBus, Record, RecordsPlanned, WriteCompleted
from astrachaos.ledger.writer import Ledger
from astrachaos.scenario import Verify
from astrachaos.verify.classify import RecordClass
from astrachaos.verify.partitions import Verification, verify
from astrachaos.verify.reads import PartitionReader, _stored, _stored_rows
from astrachaos.workload.plan import blake2b_digest_of, digest_of
from tests.unit.test_verify_join import (
    BUCKETS,
    FIRST,
    START_NS,
    STRONG,
    FakeTable,
    ScanningTable,
    _random_run,
)

ROWS = [
    (1, 1, "plain", None),
    (2, 2, 'it\'s "quoted"; ñandú — 数据 🚀\n\ttab\\slash ', None),
    (3, None, "no record id", None),
    (4, 4, None, None),  # a null payload
    (5, 5, "appended once", [5]),
    (6, 6, "appended twice", [6, 6]),
    (7, 7, "appended by two records", [7, 8]),
    (-8, 2**62, "", []),
]


@pytest.mark.parametrize("digest", [digest_of, blake2b_digest_of])
def test_rows_digested_inline_are_stored_as_one_by_one(digest: object) -> None:
    assert _stored_rows(ROWS, digest) == [_stored(row, digest) for row in ROWS]  # type: ignore[arg-type]


class ShuffledTable(ScanningTable):
    """The same table, its partitions completing in a random order, as the real reader's may."""

    def __init__(self, table: FakeTable, seed: int) -> None:
        super().__init__(table.first, table.strong, table.unreadable, table.unreadable_strong)
        self._rng = random.Random(seed)

    def scan_many(self, buckets: Iterable[int], consistency: str, **_: Any) -> Iterator[tuple[int, Any]]:
        order = list(buckets)
        self._rng.shuffle(order)
        return super().scan_many(iter(order), consistency)


def _verify(table: FakeTable, ledger: Ledger) -> Verification:
    spec = Verify(read_consistency=FIRST, reread_consistency=STRONG)
    return verify(table, ledger, range(BUCKETS), spec, START_NS, sleep=lambda _: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(20))
def test_the_order_partitions_complete_in_changes_nothing_in_the_verdict(seed: int, tmp_path: Path) -> None:
    ledger = Ledger.create(tmp_path / "ledger.sqlite", "run-1", {})
    bus = EventBus()
    ledger.subscribe(bus)
    try:
        table = _random_run(random.Random(seed), ledger, bus)
        in_order, shuffled = _verify(table, ledger), _verify(ShuffledTable(table, seed), ledger)
    finally:
        ledger.close()
    assert shuffled.not_ok == in_order.not_ok  # the same records, listed in the same order
    assert shuffled.counts == in_order.counts
    assert shuffled.by_second == in_order.by_second and shuffled.by_writer == in_order.by_writer
    assert shuffled.unread_buckets == in_order.unread_buckets
    assert shuffled.present == in_order.present and shuffled.records == in_order.records


def test_a_partition_holding_exactly_what_was_planned_still_shows_its_unacknowledged_record(
    tmp_path: Path,
) -> None:
    ledger = Ledger.create(tmp_path / "ledger.sqlite", "run-1", {})
    bus = EventBus()
    ledger.subscribe(bus)
    table = FakeTable()
    records = [Record(rid, 0, 0, 0, rid, digest_of(rid, rid, f"p{rid}")) for rid in range(8)]
    bus.publish(RecordsPlanned(tuple(records), 1))
    for r in records:
        outcome = DriverOutcome.FAILED if r.record_id == 3 else DriverOutcome.ACKED
        error = (None, None) if outcome is DriverOutcome.ACKED else ("WriteTimeout", "timed out")
        bus.publish(WriteCompleted((r.record_id,), outcome, 1, START_NS, START_NS + 1, *error))
        table.put(r.bucket, r.key, r.record_id, f"p{r.record_id}")  # every row, in key order
    ledger.flush()
    try:
        got = _verify(table, ledger)
    finally:
        ledger.close()
    assert got.counts[RecordClass.OK] == 7
    [failed_but_written] = got.not_ok
    assert failed_but_written.record_id == 3 and failed_but_written.record_class is not RecordClass.OK


def test_the_ledger_lists_its_buckets_by_skipping_from_one_to_the_next(tmp_path: Path) -> None:
    ledger = Ledger.create(tmp_path / "ledger.sqlite", "run-1", {})
    bus = EventBus()
    ledger.subscribe(bus)
    try:
        assert ledger.buckets() == []
        planned = [(0, -3), (1, 5), (2, 5), (3, 0), (4, 2**40)]
        bus.publish(RecordsPlanned(tuple(Record(rid, 0, 0, b, rid, f"d{rid}") for rid, b in planned), 1))
        ledger.flush()
        assert ledger.buckets() == [-3, 0, 5, 2**40]
    finally:
        ledger.close()


class _RefusingSession:
    """A session whose every request fails before it is sent (as a shut-down session's would)."""

    client_protocol_handler = object()

    def __init__(self) -> None:
        self.requests = 0

    def prepare(self, cql: str) -> Any:
        class Prepared:
            def bind(self, values: tuple[Any, ...]) -> Any:
                return type("Bound", (), {})()

        return Prepared()

    def execution_profile_clone_update(self, profile: Any, **changes: Any) -> Any:
        return profile

    def execute_async(self, statement: Any, execution_profile: Any) -> Any:
        self.requests += 1
        raise RuntimeError("cannot send: session shut down")


def test_a_request_that_cannot_even_be_sent_leaves_its_partition_unread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("astrachaos.verify.reads.time.sleep", lambda _: None)
    session = _RefusingSession()
    reader = PartitionReader(session, RunTable("ks", "t"), "run-1", page_size=10)

    got = list(reader.scan_many([0, 1], "ONE"))

    assert sorted(bucket for bucket, _ in got) == [0, 1]
    assert all(isinstance(error, RuntimeError) for _, error in got)
    assert session.requests == 6  # three attempts each
