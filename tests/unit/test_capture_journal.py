"""The capture ledger's journal: rows durable before SQLite holds them, completed by the next reader."""

from __future__ import annotations

import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astrachaos.capture import (
    CapturedWrite,
    CaptureLedger,
    CaptureReader,
    Told,
    Unverifiable,
    WriteKind,
    journal,
)
from astrachaos.capture import ledger as ledger_module
from astrachaos.capture.ledger import INDEX_NAME, capture_file
from astrachaos.errors import EnvironmentProblem
from tests.unit.test_capture_ledger import _CHILD_COMMITTING, _killed_once_durable

WIDTHS = (2, 3)


def _write(n: int) -> CapturedWrite:
    return CapturedWrite("ks", "t", {"k": n}, {"k": "int"}, "d", WriteKind.INSERT, "c", 1, time.time())


def _sql_count(directory: Path, table: str = "writes") -> int:
    with sqlite3.connect(capture_file(directory)) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_a_record_cut_short_or_corrupt_ends_the_journal(tmp_path: Path) -> None:
    writer = journal.JournalWriter(tmp_path, 1)
    writer.append(([(1, "a")], [(1, 2, 3.5)]))
    writer.append(([(2, b"\x00")], []))
    writer.close()
    data = journal.journal_path(tmp_path, 1).read_bytes()
    whole = journal.read_records(data, 0, WIDTHS)
    assert whole == [([(1, "a")], [(1, 2, 3.5)]), ([(2, b"\x00")], [])]
    assert journal.read_records(data[:-3], 0, WIDTHS) == whole[:1]  # the last write was cut short
    corrupt = bytearray(data)
    corrupt[-1] ^= 0xFF
    assert journal.read_records(bytes(corrupt), 0, WIDTHS) == whole[:1]
    second = 8 + struct.unpack_from(">I", data, 0)[0]  # the first record's header and payload
    assert journal.read_records(data, second, WIDTHS) == whole[1:]
    assert journal.read_records(data, len(data), WIDTHS) == []
    with pytest.raises(journal.JournalError):
        journal.read_records(data, 0, (2, 4))  # rows of another shape: not this ledger's record


def test_enum_members_in_a_row_are_journaled_as_plain_values(tmp_path: Path) -> None:
    writer = journal.JournalWriter(tmp_path, 1)
    writer.append(([(Told.RESULT, True)], []))
    writer.close()
    ((rows, _),) = journal.read_records(journal.journal_path(tmp_path, 1).read_bytes(), 0, WIDTHS)
    assert rows == [("result", True)] and type(rows[0][0]) is str


def test_answers_made_durable_on_the_producer_thread_are_in_the_journal_before_sqlite(tmp_path: Path) -> None:
    """`commit_through` writes the journal only; the thread puts the rows into SQLite later; a reader
    of the live capture sees them from the journal; `close` applies them all and deletes it."""
    with CaptureLedger(tmp_path, commit_interval_s=3600, idle_s=3600) as ledger:
        for n in range(100):
            mark = ledger.answered(ledger.sent(_write(n)), Told.RESULT)
        ledger.unverifiable(Unverifiable("literals", "ks", "t", "INSERT ...", "c"))
        ledger.commit_through(mark)
        assert _sql_count(tmp_path) == 0
        assert journal.generations(tmp_path)
        with CaptureReader(tmp_path) as reader:  # its producer runs: a copy, with the journal's rows
            writes = list(reader.writes("ks", "t"))
            assert len(reader.unverifiable()) == 1
        assert {w.write.key["k"] for w in writes if w.answer.told is Told.RESULT} == set(range(100))
        assert journal.generations(tmp_path)  # the reader left the producer's journal alone
    assert not journal.generations(tmp_path)
    assert (_sql_count(tmp_path), _sql_count(tmp_path, "answers"), _sql_count(tmp_path, "unverifiable")) == (
        100, 100, 1,
    )  # fmt: skip


def test_the_journal_is_applied_by_the_writer_thread_and_replaced_when_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "ROTATE_BYTES", 2_000)
    with CaptureLedger(tmp_path, commit_interval_s=0.01, idle_s=0.01) as ledger:
        for n in range(300):
            ledger.commit_through(ledger.answered(ledger.sent(_write(n)), Told.RESULT))
        deadline = time.monotonic() + 30
        while _sql_count(tmp_path, "answers") < 300 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _sql_count(tmp_path, "answers") == 300
        assert len(journal.generations(tmp_path)) <= 2  # applied generations are deleted
        first_live = journal.generations(tmp_path)[0]
        assert first_live > 1
    assert not journal.generations(tmp_path)


def test_a_killed_producers_capture_is_completed_in_place_by_the_next_reader(tmp_path: Path) -> None:
    """kill -9 with every row in the journal only: the reader applies it to the file and indexes it."""
    committed, answered = _killed_once_durable(_CHILD_COMMITTING, tmp_path, 3000)
    assert set(range(committed)) <= answered
    assert not journal.generations(tmp_path)
    with sqlite3.connect(capture_file(tmp_path)) as db:
        assert db.execute("SELECT count(*) FROM answers WHERE told = 'result'").fetchone()[0] >= committed
        assert db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (INDEX_NAME,)).fetchone()


def test_a_new_producer_completes_a_killed_ones_journal_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "TRANSACTION_ROWS", 100)  # recovery in many transactions
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD_COMMITTING, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    committed = 0
    while committed < 500:
        committed = int(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert journal.generations(tmp_path)
    with CaptureLedger(tmp_path, commit_interval_s=3600, idle_s=3600) as ledger:
        assert not journal.generations(tmp_path)[:-1]  # the killed producer's files: applied, deleted
        assert _sql_count(tmp_path, "answers") >= committed
        ledger.commit_through(ledger.answered(ledger.sent(_write(-1)), Told.RESULT))
    with CaptureReader(tmp_path) as reader:
        writes = list(reader.writes("ks", "t"))
    ids = [w.id for w in writes]
    assert len(ids) == len(set(ids))  # the new producer's ids follow the journal's
    told = {w.write.key["k"] for w in writes if w.answer.told is Told.RESULT}
    assert set(range(committed)) | {-1} <= told


def test_a_second_producer_of_the_same_capture_is_refused(tmp_path: Path) -> None:
    with CaptureLedger(tmp_path), pytest.raises(EnvironmentProblem, match="another process"):
        CaptureLedger(tmp_path)
    CaptureLedger(tmp_path).close()  # free again once the first closed


def test_sqlite_gets_the_rows_in_the_producers_pauses_and_at_close(tmp_path: Path) -> None:
    """While rows keep coming only the journal is written; once they pause, SQLite gets them all."""
    with CaptureLedger(tmp_path, commit_interval_s=0.01, idle_s=0.3) as ledger:
        began, n = time.monotonic(), 0
        while time.monotonic() - began < 0.8:  # busy: a row every millisecond or so
            ledger.commit_through(ledger.answered(ledger.sent(_write(n)), Told.RESULT))
            n += 1
            time.sleep(0.001)
        assert _sql_count(tmp_path, "answers") == 0
        assert ledger.backlog_bytes() > 0  # what close would apply now
        deadline = time.monotonic() + 30
        while _sql_count(tmp_path, "answers") < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _sql_count(tmp_path, "answers") == _sql_count(tmp_path) == n
        assert ledger.backlog_bytes() == 0
        for m in range(n, n + 50):  # and what comes after the pause, at close
            ledger.sent(_write(m))
    assert _sql_count(tmp_path) == n + 50
    assert not journal.generations(tmp_path)


def test_a_backlog_past_apply_bytes_goes_into_sqlite_even_while_rows_come(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "APPLY_BYTES", 5_000)
    monkeypatch.setattr(ledger_module, "TRANSACTION_ROWS", 20)
    with CaptureLedger(tmp_path, commit_interval_s=0.01, idle_s=3600) as ledger:
        deadline, n = time.monotonic() + 30, 0
        while _sql_count(tmp_path) == 0 and time.monotonic() < deadline:
            ledger.commit_through(ledger.answered(ledger.sent(_write(n)), Told.RESULT))
            n += 1
            time.sleep(0.001)
        assert 0 < _sql_count(tmp_path) <= n  # applied while busy, a transaction at a time
    assert _sql_count(tmp_path) == n
