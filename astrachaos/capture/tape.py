"""The capture tape: what a producer observed, kept as it came, made durable before it is answered.

A producer on a hot path (the proxy's loop) does not decode what it captures while its client
waits: it appends one row per thing it saw to the tape and, before the client is told anything
those rows explain, writes every row not yet written as one record (`commit_through`). Someone
else reads the tape later (`rows`) and decodes it, off the hot path. A record survives a kill -9
once `write()` returned, the durability of the ledger's journal (the format is the journal's:
`journal.py`, one table of rows `WIDTH` wide).

File: `capture.tape` in the capture directory. It is kept whole until its reader has put all of it
into the capture ledger and deleted it: whoever finds one left (its producer was killed) reads it
from the start. Its first row is the start row: the ledger ids its writes and unverifiable rows
begin at (what a replay from the start replaces).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from astrachaos.capture import journal

FILE_NAME = "capture.tape"
WIDTH = 13
START = "start"
Row = tuple[Any, ...]


def tape_path(directory: Path) -> Path:
    """Where the tape of the capture in `directory` lives."""
    return Path(directory) / FILE_NAME


class TapeWriter:
    """Appends rows; `commit_through` writes them (any thread: a lock guards the rows)."""

    def __init__(self, directory: Path, first_write_id: int, first_unverifiable_id: int) -> None:
        self.path = tape_path(directory)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        self._lock = threading.Lock()
        self._rows: list[Row] = []
        self.mark = 0  # rows appended so far: the number a row's answer waits for
        self.durable = 0  # rows written so far
        self.size = 0  # bytes written so far
        self.written_at = time.monotonic()  # when rows were last written: a reader waits for a pause
        self.add((START, first_write_id, first_unverifiable_id) + (None,) * (WIDTH - 3))
        self.commit_through(self.mark)

    def add(self, row: Row) -> int:
        """Append `row` (WIDTH plain values); its number."""
        with self._lock:
            self._rows.append(row)
            self.mark += 1
            return self.mark

    def commit_through(self, number: int) -> None:
        """Write every row appended so far in one record, unless rows through `number` are written."""
        if number <= self.durable:
            return
        with self._lock:
            rows, self._rows = self._rows, []
            mark = self.mark
            if rows:
                self.size += journal.write_all(self._fd, journal.encode_record((rows,)))
                self.written_at = time.monotonic()
            self.durable = mark

    def close(self) -> None:
        """Write what is left and close the file (it stays for its reader)."""
        self.commit_through(self.mark)
        with contextlib.suppress(OSError):
            os.close(self._fd)


def rows(path: Path, start: int, end: int) -> Iterator[tuple[list[Row], int]]:
    """The tape's records from byte `start` up to `end`, each a list of rows with the offset after it
    (a record cut short ends them: its rows were never answered)."""
    for (found,), at in journal.iter_records(path, start, end, (WIDTH,)):
        yield found, at


def start_of(path: Path) -> tuple[int, int]:
    """The ledger ids the tape's writes and unverifiable rows begin at (JournalError if unreadable)."""
    first, _ = next(rows(path, 0, path.stat().st_size), ([], 0))
    if not first or first[0][0] != START:
        raise journal.JournalError(f"{path} does not begin with its start row")
    return int(first[0][1]), int(first[0][2])
