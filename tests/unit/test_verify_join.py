"""Verification's bulk join against a record-by-record reference, over random runs.

The ledger is a real SQLite ledger; only the table is a stand-in (rows per bucket for the first
read and for the strong re-read), so that every class, collision and stray row can be arranged.
The reference classifies each record alone with `classify`, the way DESIGN.md states the rules.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from astrachaos.events import (
    AppLogged,
    DriverOutcome,
    EventBus,
    PartitionsPrinted,
    Record,
    RecordsPlanned,
    WriteCompleted,
)
from astrachaos.ledger.reader import LedgerReader, second_of
from astrachaos.ledger.writer import Ledger, LedgerRecord
from astrachaos.scenario import Verify
from astrachaos.verify.classify import RecordClass, Seen, classify, is_silent
from astrachaos.verify.partitions import verify
from astrachaos.verify.reads import Row as ReadRow
from astrachaos.verify.reads import Stored, StoredRow, _stored_rows
from astrachaos.workload.plan import PlannedRecord, applied_digest, digest_of
from astrachaos.workload.prints import PrintKeeper

FIRST, STRONG = "ONE", "ALL"
START_NS = 1_000_000_000_000
BUCKETS = 4


@dataclass(frozen=True)
class Row:
    """What a key holds: a record_id, a payload, and how many times its write was applied."""

    record_id: int | None
    payload: str | None
    applications: int = 1


@dataclass
class FakeTable:
    """Rows per bucket as the first read and the strong re-read see them; some buckets unreadable."""

    first: dict[int, dict[int, Row]] = field(default_factory=dict)
    strong: dict[int, dict[int, Row]] = field(default_factory=dict)
    unreadable: set[int] = field(default_factory=set)
    unreadable_strong: set[int] = field(default_factory=set)  # the re-read of these fails
    rows_read: int = 0

    def put(
        self,
        bucket: int,
        key: int,
        rid: int | None,
        payload: str | None,
        *,
        late: bool = False,
        applications: int = 1,
    ) -> None:
        row = Row(rid, payload, applications)
        self.strong.setdefault(bucket, {})[key] = row
        if not late:
            self.first.setdefault(bucket, {})[key] = row

    def scan(self, bucket: int, consistency: str) -> list[Stored]:
        if bucket in self.unreadable or (consistency != FIRST and bucket in self.unreadable_strong):
            raise TimeoutError(f"bucket {bucket} times out")
        rows = (self.first if consistency == FIRST else self.strong).get(bucket, {})
        self.rows_read += len(rows)
        return [(key, r.record_id, _digest(key, r), r.applications) for key, r in sorted(rows.items())]

    def read(self, bucket: int, consistency: str) -> dict[int, StoredRow]:
        return {row[0]: StoredRow(*row) for row in self.scan(bucket, consistency)}

    def raw(self, bucket: int, consistency: str) -> list[ReadRow]:
        """The partition's rows as the driver gives them, in key order: (key, record_id, payload, applied)."""
        if bucket in self.unreadable or (consistency != FIRST and bucket in self.unreadable_strong):
            raise TimeoutError(f"bucket {bucket} times out")
        rows = (self.first if consistency == FIRST else self.strong).get(bucket, {})
        self.rows_read += len(rows)
        return [
            (key, r.record_id, r.payload, None if r.applications <= 1 else [r.record_id] * r.applications)
            for key, r in sorted(rows.items())
        ]


@dataclass
class ScanningTable(FakeTable):
    """The same stand-in read as the real reader reads: whole partitions of rows as the driver gives
    them (`scan_many`), digested only when verification asks (`stored`)."""

    digested: int = 0  # rows verification had digested one by one

    def scan_many(self, buckets: Iterator[int], consistency: str, **_: Any) -> Iterator[tuple[int, Any]]:
        for bucket in buckets:
            try:
                yield bucket, self.raw(bucket, consistency)
            except Exception as error:
                yield bucket, error

    def stored(self, rows: list[ReadRow]) -> list[Stored]:
        self.digested += len(rows)
        return _stored_rows(rows, digest_of)


def _digest(key: int, row: Row) -> str:
    return applied_digest(digest_of(key, row.record_id, row.payload), row.applications)


def _random_run(
    rng: random.Random,
    ledger: Ledger,
    bus: EventBus,
    completions: tuple[int, ...] = (0, 1, 1, 1, 2, 3),
    app_logs: tuple[int, ...] = (0, 1, 1, 2),
) -> FakeTable:
    """Records with random outcomes, app logs, key collisions and table states, plus strays.

    Each record gets a number of completions drawn from `completions`, of app-log entries from
    `app_logs`.
    """
    table = FakeTable()
    records = []
    for rid in range(rng.randint(1, 120)):
        key = rng.randint(0, 60)  # collisions on purpose
        payload = f"payload-{rid}"
        records.append(
            (
                Record(rid, rng.randint(0, 2), rid // 7, key % BUCKETS, key, digest_of(key, rid, payload)),
                payload,
            )
        )
    bus.publish(RecordsPlanned(tuple(r for r, _ in records), 1))
    for record, payload in records:
        for attempt in range(rng.choice(completions)):
            outcome = rng.choice(list(DriverOutcome))
            done = START_NS + rng.randint(-2, 8) * 1_000_000_000 + rng.randint(0, 10**9)
            error = (None, None) if outcome is DriverOutcome.ACKED else ("WriteTimeout", "timed out")
            bus.publish(WriteCompleted((record.record_id,), outcome, attempt + 1, done - 5_000, done, *error))
        for at in range(rng.choice(app_logs)):
            bus.publish(AppLogged((record.record_id,), rng.random() < 0.7, 100 + at + record.record_id * 10))
        state = rng.random()
        if state < 0.55:
            table.put(record.bucket, record.key, record.record_id, payload)
        elif state < 0.65:
            table.put(record.bucket, record.key, record.record_id, payload, late=True)  # stale
        elif state < 0.72:
            table.put(record.bucket, record.key, record.record_id, None)  # null column
        elif state < 0.78:
            table.put(rng.randrange(BUCKETS), 1000 + record.record_id, record.record_id, payload)  # misplaced
        elif state < 0.86:  # a retried append, applied two or three times; null now and then
            written = payload if rng.random() < 0.85 else None
            late, times = rng.random() < 0.2, rng.choice([2, 3])
            table.put(record.bucket, record.key, record.record_id, written, late=late, applications=times)
    for _ in range(rng.randint(0, 3)):  # rows no record was meant to write
        table.put(rng.randrange(BUCKETS + 1), rng.randint(2000, 2100), rng.choice([None, 999_999]), "stray")
    if rng.random() < 0.15:
        table.unreadable.add(rng.randrange(BUCKETS))
    if rng.random() < 0.15:
        table.unreadable_strong.add(rng.randrange(BUCKETS))
    ledger.flush()
    return table


def _printed_run(rng: random.Random, ledger: Ledger, bus: EventBus) -> ScanningTable:
    """A run as the engine's writers leave it: unique keys, each writer a contiguous range of record
    ids, its prints in the ledger; most buckets as planned, some changed the ways a run goes wrong."""
    table = ScanningTable()
    writers, per_writer = 3, rng.randint(4, 40)
    for writer in range(writers):
        prints = PrintKeeper()
        batch = []
        for rid in range(writer * per_writer, (writer + 1) * per_writer):
            payload = f"payload-{rid}"
            record = Record(rid, writer, 0, rid % BUCKETS, rid, digest_of(rid, rid, payload))
            batch.append(PlannedRecord(record, payload))
        bus.publish(RecordsPlanned(tuple(p.record for p in batch), 1))
        prints.add(batch)
        if rng.random() < 0.9:  # a writer killed before it finished leaves no prints
            bus.publish(PartitionsPrinted(writer, prints.prints()))
        for planned in batch:
            r = planned.record
            acked = rng.random() < 0.97
            outcome = DriverOutcome.ACKED if acked else rng.choice(list(DriverOutcome))
            error = (None, None) if outcome is DriverOutcome.ACKED else ("WriteTimeout", "timed out")
            done = START_NS + rng.randint(0, 5) * 1_000_000_000
            bus.publish(WriteCompleted((r.record_id,), outcome, 1, done - 5_000, done, *error))
            bus.publish(AppLogged((r.record_id,), True, 100 + r.record_id))
            table.put(r.bucket, r.key, r.record_id, planned.payload)
    tampered = rng.sample(range(BUCKETS), rng.randint(0, BUCKETS))
    for bucket in tampered:
        keys = sorted(table.first.get(bucket, {}))
        if not keys:
            continue
        key = rng.choice(keys)
        rid = table.first[bucket][key].record_id
        match rng.randrange(7):
            case 0:
                del table.first[bucket][key]  # lost at the first read, back at the strong one
            case 1:
                table.put(bucket, key, rid, f"payload-{rid}!")  # a changed payload
            case 2:
                table.put(bucket, key, rid, None)  # a null column
            case 3:
                table.put(bucket, key, rid, f"payload-{rid}", applications=2)  # applied twice
            case 4:
                table.put(bucket, 10_000 + key, None, "stray")  # a row no record was meant to write
            case 5:
                del table.first[bucket][key], table.strong[bucket][key]  # lost for good
            case _:
                table.put(bucket, key, rid + 1, f"payload-{rid + 1}")  # another record's row
    ledger.flush()
    return table


def _seen(record: LedgerRecord, row: Row | None, ids_at_key: set[int]) -> Seen:
    if row is None:
        return Seen.ABSENT
    if row.record_id != record.record_id:
        return Seen.OTHER if row.record_id in ids_at_key else Seen.CORRUPT
    if row.payload != f"payload-{record.record_id}":
        return Seen.CORRUPT
    return Seen.OWN if row.applications == 1 else Seen.REPEATED


def _reference(ledger: Ledger, table: FakeTable) -> dict[str, Any]:
    """Each record classified on its own, from the ledger's record-by-record view."""
    records = list(ledger.iter_records())
    ids_at: dict[tuple[int, int], set[int]] = {}
    for r in records:
        ids_at.setdefault((r.bucket, r.key), set()).add(r.record_id)
    classes: dict[int, RecordClass] = {}
    unread = set(table.unreadable)
    for r in records:
        if r.bucket in table.unreadable:
            continue
        ids = ids_at[(r.bucket, r.key)]
        first = _seen(r, table.first.get(r.bucket, {}).get(r.key), ids)
        if first is not Seen.OWN and r.bucket in table.unreadable_strong:
            unread.add(r.bucket)
            continue
        reread = None if first is Seen.OWN else _seen(r, table.strong.get(r.bucket, {}).get(r.key), ids)
        classes[r.record_id] = classify(r.outcome, first, reread)
    by_writer: Counter[tuple[int, str]] = Counter()
    by_second: Counter[tuple[int, str]] = Counter()
    for r in records:
        if r.record_id in classes:
            by_writer[(r.writer, classes[r.record_id].value)] += 1
            if r.completed_ns is not None:
                by_second[(second_of(r.completed_ns, START_NS), classes[r.record_id].value)] += 1
    planned_keys = {(r.bucket, r.key) for r in records}
    strays = sum(
        1
        for bucket, rows in table.first.items()
        if bucket < BUCKETS and bucket not in table.unreadable  # verify reads the run's buckets
        for key in rows
        if (bucket, key) not in planned_keys
    )
    counts = Counter(classes.values())
    if strays:
        counts[RecordClass.UNEXPECTED] = strays
    return {
        "counts": counts,
        "records": len(records),
        "acknowledged": sum(r.outcome is DriverOutcome.ACKED for r in records),
        "app_logged_success": sum(r.app_logged is True for r in records),
        "silent": sum(
            is_silent(c, next(r for r in records if r.record_id == rid).app_logged)
            for rid, c in classes.items()
        ),
        "by_writer": by_writer,
        "by_second": by_second,
        "not_ok": sorted((rid, c.value) for rid, c in classes.items() if c is not RecordClass.OK),
        "unread": sorted(unread),
    }


@pytest.fixture
def run(tmp_path: Path) -> Iterator[tuple[Ledger, EventBus]]:
    ledger = Ledger.create(tmp_path / "ledger.sqlite", "run-1", {})
    bus = EventBus()
    ledger.subscribe(bus)
    yield ledger, bus
    ledger.close()


@pytest.mark.parametrize("seed", range(60))
def test_bulk_join_agrees_with_classifying_each_record_alone(seed: int, run: tuple[Ledger, EventBus]) -> None:
    ledger, bus = run
    table = _random_run(random.Random(seed), ledger, bus)
    _assert_verify_agrees_with_reference(ledger, table)


@pytest.mark.parametrize("seed", range(40))
def test_totals_kept_while_writing_give_the_same_verdicts(seed: int, run: tuple[Ledger, EventBus]) -> None:
    ledger, bus = run
    ledger.set_meta({"started_ns": str(START_NS)})  # as a run does before writing
    table = _random_run(random.Random(seed), ledger, bus, completions=(0, 1, 1, 1), app_logs=(0, 1, 1))
    records = list(ledger.iter_records())
    completions = sum(1 for r in records if r.outcome is not None)  # 1 each at most
    logged = sum(1 for r in records if r.app_logged is not None)
    meta = ledger.meta()
    assert meta["acked_totals"] == f"{START_NS} {completions}", "the writer's count holds"
    assert meta["app_logged"].startswith(f"{logged} "), "the writer's count holds"
    with ledger.reading() as reader:
        assert reader.acked_totals(START_NS) == reader.counted_acked_totals(START_NS)
        assert reader.app_logged_success() == reader.counted_app_logged_success()
    _assert_verify_agrees_with_reference(ledger, table)


@pytest.mark.parametrize("seed", range(60))
def test_partitions_matched_by_their_prints_get_the_verdicts_of_digesting_every_row(
    seed: int, run: tuple[Ledger, EventBus]
) -> None:
    ledger, bus = run
    table = _printed_run(random.Random(seed), ledger, bus)
    _assert_verify_agrees_with_reference(ledger, table)


def test_a_partition_its_prints_match_is_settled_without_a_digest_per_row(
    run: tuple[Ledger, EventBus],
) -> None:
    ledger, bus = run
    table = _printed_run(random.Random(7), ledger, bus)
    for bucket in range(BUCKETS):  # every partition as planned, every record acknowledged
        for key, row in list(table.strong[bucket].items()):
            if row.record_id is None or key >= 10_000:
                del table.strong[bucket][key]
            else:
                table.put(bucket, key, row.record_id, f"payload-{row.record_id}")
    for writer in range(3):  # every writer's prints, whatever the seed's run left
        prints = PrintKeeper()
        ids = sorted(r.record_id for r in ledger.iter_records() if r.writer == writer)
        prints.add([PlannedRecord(Record(i, writer, 0, i % BUCKETS, i, ""), f"payload-{i}") for i in ids])
        bus.publish(PartitionsPrinted(writer, prints.prints()))
    for r in ledger.iter_records():
        if r.outcome is not DriverOutcome.ACKED:
            bus.publish(WriteCompleted((r.record_id,), DriverOutcome.ACKED, 2, START_NS, START_NS + 1))
    ledger.flush()

    got = verify(table, ledger, range(BUCKETS), Verify(read_consistency=FIRST), START_NS)  # type: ignore[arg-type]

    assert got.counts == Counter({RecordClass.OK: got.records}) and got.records == got.rows_read
    assert table.digested == 0


def _assert_verify_agrees_with_reference(ledger: Ledger, table: FakeTable) -> None:
    expected = _reference(ledger, table)

    got = verify(table, ledger, range(BUCKETS), Verify(read_consistency=FIRST, reread_consistency=STRONG),  # type: ignore[arg-type]
                 START_NS, sleep=lambda _: None)  # fmt: skip

    assert +got.counts == +expected["counts"]
    assert got.records == expected["records"]
    assert got.acknowledged == expected["acknowledged"]
    assert got.app_logged_success == expected["app_logged_success"]
    assert got.silent == expected["silent"]
    assert +got.by_writer == +expected["by_writer"]
    assert +got.by_second == +expected["by_second"]
    listed = sorted(
        (n.record_id, n.record_class.value)
        for n in got.not_ok
        if n.record_class is not RecordClass.UNEXPECTED
    )
    assert listed == expected["not_ok"]
    assert sorted(set(got.unread_buckets)) == expected["unread"]


def test_a_healthy_run_is_settled_without_reading_records_one_by_one(
    run: tuple[Ledger, EventBus], monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, bus = run
    table = FakeTable()
    records = [
        Record(rid, rid % 2, 0, rid % BUCKETS, rid, digest_of(rid, rid, f"p{rid}")) for rid in range(400)
    ]
    bus.publish(RecordsPlanned(tuple(records), 1))
    for r in records:
        bus.publish(
            WriteCompleted((r.record_id,), DriverOutcome.ACKED, 1, START_NS, START_NS + 1, None, None)
        )
        table.put(r.bucket, r.key, r.record_id, f"p{r.record_id}")
    ledger.flush()

    def no_one_by_one(*_: object) -> list[LedgerRecord]:
        raise AssertionError("an all-ok bucket must not be read record by record")

    monkeypatch.setattr(LedgerReader, "records_at", no_one_by_one)
    got = verify(table, ledger, range(BUCKETS), Verify(read_consistency=FIRST), START_NS)  # type: ignore[arg-type]
    assert got.counts == Counter({RecordClass.OK: 400})
    assert got.by_writer == Counter({(0, "ok"): 200, (1, "ok"): 200})
    assert got.present == got.rows_read == 400 and not got.not_ok


def test_an_acknowledged_row_appended_twice_is_duplicated_not_ok(run: tuple[Ledger, EventBus]) -> None:
    ledger, bus = run
    table = FakeTable()
    records = [Record(rid, 0, 0, rid % BUCKETS, rid, digest_of(rid, rid, f"p{rid}")) for rid in range(8)]
    bus.publish(RecordsPlanned(tuple(records), 1))
    for r in records:
        rid = r.record_id
        bus.publish(WriteCompleted((rid,), DriverOutcome.ACKED, 2, START_NS, START_NS + 1, None, None))
        bus.publish(AppLogged((rid,), True, 100 + rid))
        times = 2 if rid == 5 else 1  # record 5 was retried and applied twice
        table.put(r.bucket, r.key, rid, f"p{rid}", applications=times)
    ledger.flush()

    got = verify(table, ledger, range(BUCKETS), Verify(), START_NS, sleep=lambda _: None)  # type: ignore[arg-type]

    assert got.counts == Counter({RecordClass.OK: 7, RecordClass.DUPLICATED: 1})
    [duplicated] = got.not_ok
    assert (duplicated.record_id, duplicated.silent) == (5, True)
    assert duplicated.found == "its own value, applied 2 times"
