"""The acknowledged totals the ledger's writer keeps: equal to the SQL count, or not used at all."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from astrachaos.events import AppLogged, DriverOutcome, EventBus, Record, RecordsPlanned, WriteCompleted
from astrachaos.ledger.totals import NOT_KEPT, AckedTotals
from astrachaos.ledger.writer import Ledger

START = 1_000_000_000_000
ACKED, FAILED, TIMED_OUT = DriverOutcome.ACKED, DriverOutcome.FAILED, DriverOutcome.INDETERMINATE


def _writing(path: Path, started_ns: int | None = START) -> tuple[Ledger, EventBus]:
    ledger = Ledger.create(path, "run", {})
    if started_ns is not None:
        ledger.set_meta({"started_ns": str(started_ns)})
    bus = EventBus()
    ledger.subscribe(bus)
    return ledger, bus


def _records(bus: EventBus, first: int, count: int, *, writer: int = 0) -> None:
    records = tuple(
        Record(rid, writer, rid // 10, rid % 4, rid, f"d{rid}") for rid in range(first, first + count)
    )
    bus.publish(RecordsPlanned(records, 1))


def _complete(bus: EventBus, rid: int, outcome: DriverOutcome = ACKED, second: float = 0.5) -> None:
    done = START + int(second * 1e9)
    bus.publish(WriteCompleted((rid,), outcome, 1, done - 1000, done))


def _totals(path: Path, started_ns: int = START) -> tuple[AckedTotals, AckedTotals]:
    with Ledger.open(path) as ledger, ledger.reading() as reader:
        return reader.acked_totals(started_ns), reader.counted_acked_totals(started_ns)


def test_totals_kept_while_writing_equal_the_sql_count(tmp_path: Path) -> None:
    ledger, bus = _writing(tmp_path / "ledger.sqlite")
    _records(bus, 0, 40)
    _records(bus, 40, 20, writer=1)
    for rid in range(60):
        outcome = (ACKED, ACKED, ACKED, FAILED, TIMED_OUT)[rid % 5]
        _complete(bus, rid, outcome, second=rid / 7 - 1)  # a few before the recorded start
    ledger.close()

    kept, counted = _totals(tmp_path / "ledger.sqlite")
    assert Ledger.open(tmp_path / "ledger.sqlite").meta()["acked_totals"] == f"{START} 60"
    assert kept == counted and kept.count == 36
    assert kept.by_second[0] == counted.by_second[0] > 0


def test_a_second_completion_of_a_record_leaves_the_count_to_sql(tmp_path: Path) -> None:
    ledger, bus = _writing(tmp_path / "ledger.sqlite")
    _records(bus, 0, 10)
    for rid in range(10):
        _complete(bus, rid, FAILED if rid == 3 else ACKED, second=1)
    _complete(bus, 3, ACKED, second=4)  # a retry acknowledged later: SQL knows the record's last word
    ledger.close()

    assert Ledger.open(tmp_path / "ledger.sqlite").meta()["acked_totals"] == NOT_KEPT
    kept, counted = _totals(tmp_path / "ledger.sqlite")
    assert kept == counted and kept.count == 10 and kept.by_second[4] == 1


def test_totals_without_a_recorded_start_are_not_kept(tmp_path: Path) -> None:
    ledger, bus = _writing(tmp_path / "ledger.sqlite", started_ns=None)
    _records(bus, 0, 5)
    for rid in range(5):
        _complete(bus, rid)
    ledger.close()

    assert Ledger.open(tmp_path / "ledger.sqlite").meta()["acked_totals"] == NOT_KEPT
    kept, counted = _totals(tmp_path / "ledger.sqlite")
    assert kept == counted and kept.count == 5


def test_kept_totals_are_not_used_for_another_start_or_extra_completions(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger, bus = _writing(path)
    _records(bus, 0, 10)
    for rid in range(10):
        _complete(bus, rid, second=rid / 3)
    ledger.close()
    kept, counted = _totals(path, started_ns=START + 2 * 10**9)  # seconds counted from elsewhere
    assert kept == counted and kept.by_second[0] == 9  # from START: 3

    with Ledger.open(path, read_only=False) as reopened:  # written to by someone else since
        bus = EventBus()
        reopened.subscribe(bus)
        _complete(bus, 2, FAILED, second=5)
    kept, counted = _totals(path)
    assert kept == counted and kept.count == 10


def _merged_from_two_processes(tmp_path: Path, records: int, write: Callable[[EventBus, int], None]) -> None:
    """`ledger.sqlite` absorbing the segments of two writer processes, each planning `records`
    records from id 100 × process, then `write(bus, process)`."""
    segments = []
    for process in range(2):
        segment = tmp_path / f"ledger-p{process}.sqlite"
        part, bus = _writing(segment)
        _records(bus, process * 100, records, writer=process)
        write(bus, process)
        part.close()
        segments.append(segment)
    main, _ = _writing(tmp_path / "ledger.sqlite")
    for segment in segments:
        main.absorb(segment)
    main.close()


def test_segments_of_writer_processes_add_their_kept_totals(tmp_path: Path) -> None:
    def complete(bus: EventBus, process: int) -> None:
        for rid in range(process * 100, process * 100 + 30):
            _complete(bus, rid, ACKED if rid % 4 else FAILED, second=rid % 3)

    _merged_from_two_processes(tmp_path, 30, complete)

    assert Ledger.open(tmp_path / "ledger.sqlite").meta()["acked_totals"] == f"{START} 60"
    kept, counted = _totals(tmp_path / "ledger.sqlite")
    assert kept == counted and kept.count == 44 and set(kept.by_writer) == {0, 1}


def test_a_segment_that_kept_no_totals_leaves_the_merged_count_to_sql(tmp_path: Path) -> None:
    kept_one, not_kept = tmp_path / "ledger-p0.sqlite", tmp_path / "ledger-p1.sqlite"
    part, bus = _writing(kept_one)
    _records(bus, 0, 5)
    for rid in range(5):
        _complete(bus, rid)
    part.close()
    part, bus = _writing(not_kept)
    _records(bus, 100, 5, writer=1)
    for rid in (100, 101, 101, 102):
        _complete(bus, rid)
    part.close()
    main, _ = _writing(tmp_path / "ledger.sqlite")
    main.absorb(kept_one)
    main.absorb(not_kept)
    main.close()

    assert Ledger.open(tmp_path / "ledger.sqlite").meta()["acked_totals"] == NOT_KEPT
    kept, counted = _totals(tmp_path / "ledger.sqlite")
    assert kept == counted and kept.count == 8


def _logged(path: Path) -> tuple[str, int, int]:
    with Ledger.open(path) as ledger, ledger.reading() as reader:
        return ledger.meta()["app_logged"], reader.app_logged_success(), reader.counted_app_logged_success()


def test_app_log_successes_counted_while_writing_equal_the_sql_count(tmp_path: Path) -> None:
    ledger, bus = _writing(tmp_path / "ledger.sqlite")
    _records(bus, 0, 30)
    for rid in range(0, 30, 2):
        bus.publish(AppLogged((rid, rid + 1), rid % 3 != 0, 100 + rid))
    ledger.close()

    assert _logged(tmp_path / "ledger.sqlite") == ("30 20", 20, 20)


def test_a_record_logged_twice_leaves_the_app_log_count_to_sql(tmp_path: Path) -> None:
    ledger, bus = _writing(tmp_path / "ledger.sqlite")
    _records(bus, 0, 5)
    bus.publish(AppLogged((0, 1, 2, 3, 4), True, 100))
    bus.publish(AppLogged((2,), False, 200))  # its last word: a failure
    ledger.close()

    assert _logged(tmp_path / "ledger.sqlite") == (NOT_KEPT, 4, 4)


def test_segments_add_their_app_log_counts(tmp_path: Path) -> None:
    def log(bus: EventBus, process: int) -> None:
        bus.publish(AppLogged(tuple(range(process * 100, process * 100 + 10)), process == 0, 100))

    _merged_from_two_processes(tmp_path, 10, log)

    assert _logged(tmp_path / "ledger.sqlite") == ("20 10", 10, 10)
