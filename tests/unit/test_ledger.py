"""The ledger: what it keeps, how it picks the final word on a record, and how it behaves under load."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from astrachaos.errors import EnvironmentProblem, ExitCode
from astrachaos.events import (
    AppLogged,
    DriverOutcome,
    EventBus,
    FaultWindow,
    Record,
    RecordsPlanned,
    WriteCompleted,
)
from astrachaos.ledger.writer import Ledger, LedgerCounts, LedgerRecord

ACKED, FAILED = DriverOutcome.ACKED, DriverOutcome.FAILED


def _record(record_id: int, *, bucket: int = 0, key: int | None = None, writer: int = 0) -> Record:
    key = record_id if key is None else key
    return Record(record_id, writer, record_id // 10, bucket, key, f"digest-{record_id}")


def _plan(bus: EventBus, *records: Record, at_ns: int = 1) -> None:
    bus.publish(RecordsPlanned(records, at_ns))


def _complete(
    bus: EventBus,
    *ids: int,
    outcome: DriverOutcome = ACKED,
    attempts: int = 1,
    submitted_ns: int = 10,
    completed_ns: int = 20,
    error: tuple[str, str] | None = None,
) -> None:
    error_class, error_message = error or (None, None)
    bus.publish(
        WriteCompleted(ids, outcome, attempts, submitted_ns, completed_ns, error_class, error_message)
    )


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def ledger(tmp_path: Path, bus: EventBus) -> Iterator[Ledger]:
    ledger = Ledger.create(tmp_path / "ledger.sqlite", "run-1", {"scenario": "unit", "seed": "7"})
    ledger.subscribe(bus)
    yield ledger
    ledger.close()


def _by_id(ledger: Ledger) -> dict[int, LedgerRecord]:
    return {r.record_id: r for r in ledger.iter_records()}


def test_final_outcome_is_the_last_completion_by_completed_time(ledger: Ledger, bus: EventBus) -> None:
    _plan(bus, _record(1))
    # published out of order: the ledger must order by completed_ns, not by arrival
    _complete(bus, 1, outcome=ACKED, attempts=3, submitted_ns=150, completed_ns=300)
    _complete(
        bus, 1, outcome=FAILED, attempts=1, submitted_ns=100, completed_ns=200, error=("WriteTimeout", "x")
    )
    ledger.flush()
    [record] = ledger.iter_records()
    assert record.outcome is ACKED
    assert record.attempts == 3
    assert (record.submitted_ns, record.completed_ns) == (100, 300)  # first submitted, last completed
    assert (record.error_class, record.error_message) == (None, None)


def test_last_completion_carries_its_error(ledger: Ledger, bus: EventBus) -> None:
    _plan(bus, _record(1))
    _complete(bus, 1, outcome=DriverOutcome.INDETERMINATE, completed_ns=100, error=("WriteTimeout", "t"))
    _complete(bus, 1, outcome=FAILED, attempts=2, completed_ns=200, error=("Unavailable", "1 of 2"))
    ledger.flush()
    [record] = ledger.iter_records()
    assert (record.outcome, record.error_class, record.error_message) == (FAILED, "Unavailable", "1 of 2")


def test_an_acknowledged_attempt_outranks_later_failures(ledger: Ledger, bus: EventBus) -> None:
    # a later retry that fails or times out does not un-apply a write the database acknowledged
    _plan(bus, _record(1))
    _complete(bus, 1, outcome=ACKED, attempts=1, completed_ns=100)
    _complete(bus, 1, outcome=FAILED, attempts=2, completed_ns=200, error=("Unavailable", "1 of 2"))
    ledger.flush()
    [record] = ledger.iter_records()
    assert (record.outcome, record.completed_ns, record.error_class) == (ACKED, 100, None)
    assert record.attempts == 2


def test_equal_completion_times_resolve_to_the_one_recorded_last(ledger: Ledger, bus: EventBus) -> None:
    _plan(bus, _record(1))
    _complete(bus, 1, outcome=FAILED, completed_ns=100)
    _complete(bus, 1, outcome=DriverOutcome.INDETERMINATE, completed_ns=100)
    ledger.flush()
    [record] = ledger.iter_records()
    assert record.outcome is DriverOutcome.INDETERMINATE


def test_record_without_completion_has_no_outcome(ledger: Ledger, bus: EventBus) -> None:
    _plan(bus, _record(1), _record(2))
    _complete(bus, 2)
    ledger.flush()
    records = _by_id(ledger)
    never = records[1]
    assert never.outcome is None
    assert never.attempts == 0
    assert never.submitted_ns is None and never.completed_ns is None
    assert records[2].outcome is ACKED


def test_app_logged_is_the_last_entry(ledger: Ledger, bus: EventBus) -> None:
    _plan(bus, _record(1), _record(2), _record(3))
    bus.publish(AppLogged((1, 2), False, 10))
    bus.publish(AppLogged((1,), True, 20))
    bus.publish(AppLogged((2,), True, 5))  # earlier than the failure, though published later
    ledger.flush()
    logged = {r.record_id: r.app_logged for r in ledger.iter_records()}
    assert logged == {1: True, 2: False, 3: None}


def test_records_are_ordered_by_bucket_key_then_record_id(ledger: Ledger, bus: EventBus) -> None:
    _plan(bus, _record(1, bucket=2, key=5), _record(2, bucket=1, key=9), _record(3, bucket=1, key=3))
    _plan(bus, _record(4, bucket=2, key=5), _record(0, bucket=2, key=5), _record(5, bucket=0, key=100))
    ledger.flush()
    order = [(r.bucket, r.key, r.record_id) for r in ledger.iter_records()]
    assert order == [(0, 100, 5), (1, 3, 3), (1, 9, 2), (2, 5, 0), (2, 5, 1), (2, 5, 4)]
    assert ledger.buckets() == [0, 1, 2]


def test_planned_fields_are_kept(ledger: Ledger, bus: EventBus) -> None:
    _plan(bus, Record(42, writer=3, batch=7, bucket=4, key=-(2**63), digest="abc"), at_ns=123)
    ledger.flush()
    [record] = ledger.iter_records()
    kept = (record.writer, record.batch, record.bucket, record.key, record.digest, record.planned_ns)
    assert kept == (3, 7, 4, -(2**63), "abc", 123)


def test_every_field_survives_batched_inserts(ledger: Ledger, bus: EventBus) -> None:
    count = 1_234  # not a multiple of the rows per statement: full chunks and a remainder
    for i in range(count):
        _plan(bus, _record(i, bucket=i % 7))
        if i % 3:
            _complete(bus, i, attempts=i, submitted_ns=i, completed_ns=i + 1)
        else:
            _complete(bus, i, outcome=FAILED, completed_ns=i + 1, error=("Overloaded", f"busy {i}"))
        bus.publish(AppLogged((i,), i % 2 == 0, i))
    ledger.flush()
    records = _by_id(ledger)
    assert len(records) == count
    for i, r in records.items():
        assert (r.bucket, r.digest, r.app_logged, r.completed_ns) == (i % 7, f"digest-{i}", i % 2 == 0, i + 1)
        if i % 3:
            assert (r.outcome, r.attempts, r.submitted_ns, r.error_class) == (ACKED, i, i, None)
        else:
            assert (r.outcome, r.error_class, r.error_message) == (FAILED, "Overloaded", f"busy {i}")


def test_counts_summarise_final_outcomes_and_app_logs(ledger: Ledger, bus: EventBus) -> None:
    _plan(bus, *(_record(i) for i in range(6)))
    _complete(bus, 0, 1)
    _complete(bus, 2, outcome=FAILED)
    _complete(bus, 3, outcome=DriverOutcome.INDETERMINATE)
    _complete(bus, 4, outcome=DriverOutcome.DROPPED)
    bus.publish(AppLogged((0, 1, 4), True, 30))
    bus.publish(AppLogged((2,), False, 30))
    ledger.flush()
    assert ledger.counts() == LedgerCounts(
        planned=6,
        acked=2,
        failed=1,
        indeterminate=1,
        dropped=1,
        no_outcome=1,
        app_logged_success=3,
        app_logged_failure=1,
        app_not_logged=2,
    )
    assert ledger.record_count() == 6


def test_meta_holds_the_run_and_what_the_runner_adds(ledger: Ledger) -> None:
    ledger.set_meta({"keyspace": "chaos", "seed": "8"})
    meta = ledger.meta()
    assert meta["run_id"] == "run-1"
    assert (meta["scenario"], meta["seed"], meta["keyspace"]) == ("unit", "8", "chaos")
    assert int(meta["created_ns"]) > 0


def test_fault_windows_may_stay_open(ledger: Ledger) -> None:
    first = ledger.record_fault_window(FaultWindow("latency", "client", 100))
    ledger.record_fault_window(FaultWindow("kill-node", "node", 50, 80))
    ledger.end_fault_window(first, 400)
    second_open = ledger.record_fault_window(FaultWindow("reset-peer", "network", 500))
    windows = ledger.fault_windows()
    assert [(w.injector, w.kind, w.start_ns, w.end_ns) for w in windows] == [
        ("kill-node", "node", 50, 80),
        ("latency", "client", 100, 400),
        ("reset-peer", "network", 500, None),
    ]
    assert windows[2].window_id == second_open


def test_a_fault_window_overlaps_what_was_in_flight_during_it() -> None:
    closed = FaultWindow("latency", "client", 100, 200, window_id=1)
    still_open = FaultWindow("latency", "client", 100, None, window_id=2)
    assert closed.overlaps(150, 160) and closed.overlaps(50, 100) and closed.overlaps(200, 900)
    assert not closed.overlaps(10, 99) and not closed.overlaps(201, 300)
    assert still_open.overlaps(10_000, 10_001) and not still_open.overlaps(0, 99)


def test_flush_commits_without_waiting_for_the_timer(tmp_path: Path, bus: EventBus) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.create(path, "run", {}, commit_interval_s=3600, commit_rows=10**9) as ledger:
        ledger.subscribe(bus)
        _plan(bus, *(_record(i) for i in range(100)))
        _complete(bus, *range(100))
        started = time.monotonic()
        ledger.flush()
        assert time.monotonic() - started < 5
        with sqlite3.connect(path) as other:  # a reader that shares nothing with the ledger
            assert other.execute("SELECT COUNT(*) FROM completions").fetchone() == (100,)


def test_the_writer_commits_on_its_own_in_batches(tmp_path: Path, bus: EventBus) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.create(path, "run", {}, commit_interval_s=0.01) as ledger:
        ledger.subscribe(bus)
        _plan(bus, _record(1))
        deadline = time.monotonic() + 10
        with sqlite3.connect(path) as other:
            while other.execute("SELECT COUNT(*) FROM planned").fetchone() != (1,):
                assert time.monotonic() < deadline, "nothing committed without flush()"
                time.sleep(0.01)


def test_flush_with_nothing_subscribed_returns(tmp_path: Path) -> None:
    with Ledger.create(tmp_path / "ledger.sqlite", "run", {}) as ledger:
        ledger.flush()
        assert ledger.record_count() == 0


def test_concurrent_publishers_record_every_record_exactly_once(ledger: Ledger, bus: EventBus) -> None:
    threads, per_thread, per_statement = 8, 20_000, 10

    def publish(writer: int) -> None:
        base = writer * per_thread
        for start in range(base, base + per_thread, per_statement):
            ids = tuple(range(start, start + per_statement))
            _plan(bus, *(_record(i, bucket=i % 16, writer=writer) for i in ids))
            _complete(bus, *ids)
            bus.publish(AppLogged(ids, True, 30))

    workers = [threading.Thread(target=publish, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    ledger.flush()
    ids = [r.record_id for r in ledger.iter_records()]
    assert len(ids) == threads * per_thread
    assert set(ids) == set(range(threads * per_thread))
    counts = ledger.counts()
    assert counts.acked == counts.app_logged_success == threads * per_thread
    with sqlite3.connect(ledger.path) as other:  # one completion row per record, no replays
        assert other.execute("SELECT COUNT(*), COUNT(DISTINCT record_id) FROM completions").fetchone() == (
            threads * per_thread,
            threads * per_thread,
        )


def test_producers_block_when_the_queue_is_full(tmp_path: Path, bus: EventBus) -> None:
    ledger = Ledger.create(tmp_path / "ledger.sqlite", "run", {}, max_pending_rows=100, commit_rows=10)
    ledger.subscribe(bus)
    release = threading.Event()
    write = ledger._write

    def slow_write(counts: list[int]) -> None:
        release.wait()
        write(counts)

    def produce() -> None:
        for i in range(1_000):
            _plan(bus, _record(i))

    ledger._write = slow_write  # type: ignore[method-assign]
    producer = threading.Thread(target=produce)
    producer.start()
    most = 0
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        most = max(most, ledger.pending_rows)
        time.sleep(0.001)
    assert producer.is_alive(), "the producer should be held back while the writer is stuck"
    assert 0 < most <= 100 + 1  # the bound, plus the row its blocked producer added
    release.set()
    producer.join(timeout=30)
    ledger.close()
    assert ledger.record_count() == 1_000


def test_a_failing_writer_is_reported_as_an_environment_problem(tmp_path: Path, bus: EventBus) -> None:
    ledger = Ledger.create(tmp_path / "ledger.sqlite", "run", {})
    (pages,) = ledger._conn.execute("PRAGMA page_count").fetchone()
    ledger._conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # the disk fills up
    ledger.subscribe(bus)
    for start in range(0, 20_000, 100):
        _plan(bus, *(_record(i) for i in range(start, start + 100)))
    with pytest.raises(EnvironmentProblem) as raised:
        ledger.flush()
    assert raised.value.exit_code is ExitCode.ENVIRONMENT
    assert "full" in str(raised.value)
    started = time.monotonic()
    for start in range(20_000, 300_000, 100):  # a dead writer must not block the workload
        _plan(bus, *(_record(i) for i in range(start, start + 100)))
    assert time.monotonic() - started < 10
    with pytest.raises(EnvironmentProblem):
        ledger.close()


def test_events_after_close_are_not_recorded(tmp_path: Path, bus: EventBus) -> None:
    ledger = Ledger.create(tmp_path / "ledger.sqlite", "run", {})
    ledger.subscribe(bus)
    _plan(bus, _record(1))
    ledger.close()
    _plan(bus, _record(2))
    assert [r.record_id for r in ledger.iter_records()] == [1]


def test_a_reopened_ledger_reads_what_was_written(tmp_path: Path, bus: EventBus) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.create(path, "run-9", {"table": "t"}) as ledger:
        ledger.subscribe(bus)
        _plan(bus, _record(1), _record(2))
        _complete(bus, 1)
    reopened = Ledger.open(path)
    assert reopened.meta()["run_id"] == "run-9"
    assert [(r.record_id, r.outcome) for r in reopened.iter_records()] == [(1, ACKED), (2, None)]
    reopened.close()


def test_create_refuses_to_overwrite_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger.create(path, "run", {}).close()
    with pytest.raises(EnvironmentProblem, match="already exists"):
        Ledger.create(path, "run", {})


def test_open_refuses_what_is_not_a_ledger(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="no ledger"):
        Ledger.open(tmp_path / "missing.sqlite")
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).close()
    with pytest.raises(EnvironmentProblem, match="not an astrachaos ledger"):
        Ledger.open(other)


def test_open_names_a_ledger_of_an_older_schema(tmp_path: Path) -> None:
    old = tmp_path / "old.sqlite"
    conn = sqlite3.connect(old)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with pytest.raises(EnvironmentProblem, match=r"older astrachaos \(ledger schema 1, this one reads 2\)"):
        Ledger.open(old)


def test_a_ledger_names_its_digest_and_an_older_one_is_read_with_blake2b(tmp_path: Path) -> None:
    from astrachaos.events import RECORD_DIGEST
    from astrachaos.workload.plan import blake2b_digest_of, digest_named, digest_of

    with Ledger.create(tmp_path / "l.sqlite", "run", {}) as ledger:
        assert ledger.meta()["digest"] == RECORD_DIGEST
    assert digest_named(RECORD_DIGEST) is digest_of
    assert digest_named(None) is blake2b_digest_of  # a ledger from before the name was kept
    assert len(digest_of(1, 1, "p")) == len(blake2b_digest_of(1, 1, "p")) == 16


def test_a_writer_process_segment_is_merged_once_and_removed(tmp_path: Path) -> None:
    from astrachaos.events import DriverOutcome, EventBus, Record, RecordsPlanned, WriteCompleted

    segment = tmp_path / "ledger-p1.sqlite"
    with Ledger.create(segment, "run", {}) as part:
        bus = EventBus()
        part.subscribe(bus)
        bus.publish(RecordsPlanned((Record(7, 1, 0, 3, 7, "d"),), 1))
        bus.publish(WriteCompleted((7,), DriverOutcome.ACKED, 1, 2, 3))
        part.record_fault_window(FaultWindow("client", "client", 1, 2))
        part.flush()
    with Ledger.create(tmp_path / "ledger.sqlite", "run", {}) as ledger:
        assert ledger.absorb(segment) == 1
        assert not segment.exists()
        (record,) = list(ledger.iter_records())
        assert (record.record_id, record.outcome) == (7, DriverOutcome.ACKED)
        assert [w.injector for w in ledger.fault_windows()] == ["client"]


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _read_everything(path: Path) -> list[tuple[int, DriverOutcome | None]]:
    with Ledger.open(path) as ledger:
        ledger.meta()
        ledger.counts()
        ledger.fault_windows()
        return [(r.record_id, r.outcome) for r in ledger.iter_records()]


def test_reading_a_closed_ledger_changes_no_byte_and_creates_no_file(tmp_path: Path, bus: EventBus) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.create(path, "run", {}) as ledger:
        ledger.subscribe(bus)
        _plan(bus, _record(1), _record(2))
        _complete(bus, 1)
    before = _files(tmp_path)
    assert _read_everything(path) == [(1, ACKED), (2, None)]
    assert _files(tmp_path) == before


def test_reading_a_crashed_ledger_sees_its_write_ahead_log_and_changes_neither_file(
    tmp_path: Path, bus: EventBus
) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.create(path, "run", {}) as ledger:
        ledger.subscribe(bus)
        _plan(bus, _record(1))
    # A writer that never checkpoints stands for a process killed mid-run: rows only in the -wal.
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO planned SELECT 2, writer, batch, bucket, 2, digest, planned_ns FROM planned")
    wal = tmp_path / "ledger.sqlite-wal"
    main_before, wal_before = path.read_bytes(), wal.read_bytes()
    try:
        assert [record_id for record_id, _ in _read_everything(path)] == [1, 2]
        assert path.read_bytes() == main_before
        assert wal.read_bytes() == wal_before
    finally:
        writer.close()


def test_a_zero_length_ledger_is_refused_and_stays_zero_length(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    path.touch()
    with pytest.raises(EnvironmentProblem, match="not an astrachaos ledger"):
        Ledger.open(path)
    assert _files(tmp_path) == {"ledger.sqlite": b""}


def test_a_ledger_without_read_indexes_is_indexed_in_a_copy_not_in_place(
    tmp_path: Path, bus: EventBus
) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger.create(path, "run", {}) as ledger:
        ledger.subscribe(bus)
        _plan(bus, _record(1), _record(2))
        _complete(bus, 2)
    conn = sqlite3.connect(path)  # a ledger written before the indexes were in the schema
    for index in ("planned_by_bucket", "completions_by_record", "app_logs_by_record"):
        conn.execute(f"DROP INDEX {index}")
    conn.commit()
    conn.close()
    before = _files(tmp_path)
    assert _read_everything(path) == [(1, None), (2, ACKED)]
    assert _files(tmp_path) == before


def test_a_ledger_opened_for_reading_refuses_to_write(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger.create(path, "run", {}).close()
    with Ledger.open(path) as ledger, pytest.raises(RuntimeError, match="read-only"):
        ledger.set_meta({"finished_at": "now"})
