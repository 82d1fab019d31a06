"""The capture ledger: a crash-safe SQLite file of captured writes, their answers, the unverifiable.

Producers (the proxy loop, driver callbacks) only append rows to a queue. A producer that must not
tell its client anything the ledger could lose waits for `flush()`, registers `when_durable(...)`,
or makes its rows durable on its own thread with `commit_through(...)` before answering (the
proxy's loop: cheaper than a hand-over). Durable means written to the journal (`journal.py`: one
`write()` of every row queued so far; a kill -9 loses nothing written, as a SQLite WAL commit at
`synchronous=NORMAL`). The ledger's own thread writes the journal every `commit_interval_s`, and
puts the journaled rows into SQLite, read back from the journal file, once no row has been
appended for `idle_s` (or once `APPLY_BYTES` of journal wait, and at close): while a client
writes, its proxy only journals, and SQLite gets the rows in its pauses. Large transactions,
many rows per INSERT statement (SQLite releases the GIL once per statement), the journal
position applied stored in the same transaction; an application under way stops between
transactions as soon as rows are appended again. WAL checkpoints (they fsync) run on
that thread too, over a connection of its own. `close()` applies everything and deletes the
journal; a capture whose producer was killed is completed from its journal by the next
`CaptureLedger` or `CaptureReader` that opens it (`recover`).

Format 2 (see `cells.py`): a write row holds its table (an id into `tables`, which keeps the key
columns, their types and how many form the partition key), the partition's token, the key as
joined serialized cells, its column set (an id into `column_sets`), the value digest (an integer
for serialized cells, the text of `keys.value_digest` for Python values) and the fingerprint used
by verification's range sums. Format 1 captures (JSON keys) are refused with a clear message.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from pathlib import Path
from types import TracebackType
from typing import Any

from astrachaos.capture import journal
from astrachaos.capture.cells import KeyCodec, serialize
from astrachaos.capture.keys import TableKeys
from astrachaos.capture.model import CapturedWrite, Told, Unverifiable, WriteKind
from astrachaos.errors import EnvironmentProblem
from astrachaos.ledger.writer import connect_wal

log = logging.getLogger(__name__)

FILE_NAME = "capture.sqlite"
SCHEMA_VERSION = 2
_BUSY_TIMEOUT_MS = 30_000
IDLE_S = 0.25  # journaled rows go into SQLite once no row has been appended for this long ...
APPLY_BYTES = 256 * 1024 * 1024  # ... or once this much journal waits, even while rows come
JOURNAL_ROWS = 20_000  # the thread journals as soon as this many rows are queued
TRANSACTION_ROWS = 50_000  # rows put into SQLite per transaction (about)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tables (
    id INTEGER PRIMARY KEY, keyspace TEXT NOT NULL, tbl TEXT NOT NULL, key_columns TEXT NOT NULL,
    key_types TEXT NOT NULL, partition_columns INTEGER);
CREATE TABLE IF NOT EXISTS column_sets (
    id INTEGER PRIMARY KEY, table_id INTEGER NOT NULL, columns TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS writes (
    id INTEGER PRIMARY KEY, table_id INTEGER NOT NULL, token INTEGER, key BLOB NOT NULL,
    column_set INTEGER, digest, fingerprint INTEGER, write_timestamp INTEGER, kind TEXT NOT NULL,
    fault TEXT, connection TEXT NOT NULL, stream INTEGER NOT NULL, sent_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    write_id INTEGER PRIMARY KEY, told TEXT NOT NULL, error_class TEXT, error_message TEXT,
    answered_at REAL);
CREATE TABLE IF NOT EXISTS unverifiable (
    id INTEGER PRIMARY KEY, reason TEXT NOT NULL, keyspace TEXT, tbl TEXT, statement TEXT NOT NULL,
    connection TEXT NOT NULL, at REAL NOT NULL, fault TEXT);
CREATE TABLE IF NOT EXISTS journal_applied (
    id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL, position INTEGER NOT NULL);
"""
# Built when the producer closes (appends stay in rowid order while capturing, cheap at any size);
# a capture whose producer was killed is read from a temporary copy that has it.
INDEX_NAME = "writes_by_token"
INDEX = f"CREATE INDEX IF NOT EXISTS {INDEX_NAME} ON writes (table_id, token, key, id)"

# (table, columns, rows per INSERT statement): many rows per statement, one GIL release each.
_TABLES = (
    ("writes", 13, 200), ("answers", 5, 500), ("unverifiable", 8, 200), ("meta", 2, 100),
    ("tables", 6, 50), ("column_sets", 3, 100),
)  # fmt: skip
_WRITES, _ANSWERS, _UNVERIFIABLE, _META, _REGISTERED_TABLES, _COLUMN_SETS = range(6)
_WIDTHS = tuple(columns for _, columns, _ in _TABLES)
_TOLD = {told: told.value for told in Told}  # plain strings: an enum's .value costs a lookup per row
_KINDS = {kind: kind.value for kind in WriteKind}
_APPLIED = "INSERT OR REPLACE INTO journal_applied VALUES (1, ?, ?)"


def capture_file(directory: Path) -> Path:
    """Where the capture ledger of `directory` lives."""
    return Path(directory) / FILE_NAME


@functools.lru_cache(maxsize=256)
def _insert(table: str, columns: int, rows: int) -> str:
    verb = "INSERT OR REPLACE" if table in ("answers", "meta") else "INSERT"
    one = "(" + ", ".join("?" * columns) + ")"
    return f"{verb} INTO {table} VALUES " + ", ".join([one] * rows)


class CaptureLedger:
    """Appends captured writes and answers; commits in batches on a thread of its own.

    When more than `max_pending_rows` rows wait, producers block until the writer catches up:
    nothing is dropped to keep up, and memory stays bounded.
    """

    def __init__(
        self,
        directory: Path,
        meta: dict[str, str] | None = None,
        *,
        commit_interval_s: float = 0.01,
        idle_s: float = IDLE_S,
        max_pending_rows: int = 100_000,
    ) -> None:
        self.path = capture_file(directory)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._producer = journal.ProducerLock(self.path.parent)
            if not self._producer.take():
                raise EnvironmentProblem(f"another process is writing the capture at {self.path.parent}")
            self._conn = connect_wal(self.path)
            (version,) = self._conn.execute("PRAGMA user_version").fetchone()
            check_version(self.path, version, allow_new=True)
            self._conn.executescript(f"BEGIN; {_SCHEMA}; COMMIT;")
            self._conn.execute("PRAGMA cache_size = -32768")  # 32 MB: commits stay in memory
            # Checkpoints (they fsync) run on a connection of their own, between the thread's commits.
            self._conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpointer = connect_wal(self.path)
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            generation = _apply_journal(self._conn, self.path.parent) + 1  # an earlier producer's, killed
            (last,) = self._conn.execute("SELECT coalesce(max(id), 0) FROM writes").fetchone()
            (unverifiable,) = self._conn.execute("SELECT coalesce(max(id), 0) FROM unverifiable").fetchone()
            self._tables: dict[tuple[str, str], tuple[int, dict[str, str], int | None]] = {
                (ks, tb): (i, json.loads(types), parts)
                for i, ks, tb, types, parts in self._conn.execute(
                    "SELECT id, keyspace, tbl, key_types, partition_columns FROM tables"
                )
            }
            self._column_sets: dict[tuple[int, tuple[str, ...]], int] = {
                (t, tuple(json.loads(c))): i
                for i, t, c in self._conn.execute("SELECT id, table_id, columns FROM column_sets")
            }
            if meta:
                self._conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())
            self._journal = journal.JournalWriter(self.path.parent, generation)
            self._conn.execute(_APPLIED, (generation, 0))
        except (OSError, sqlite3.Error, journal.JournalError) as error:
            raise EnvironmentProblem(f"cannot open the capture ledger at {self.path}: {error}") from error
        self._codecs: dict[int, KeyCodec] = {}
        self._next_id = int(last) + 1
        self._next_unverifiable_id = int(unverifiable) + 1
        self.clock: Callable[[], float] = time.time  # when a row is recorded (a replay gives its own)
        self._interval = commit_interval_s
        self._idle_s = idle_s
        self._max_pending = max_pending_rows
        self._journal_rows = min(JOURNAL_ROWS, max_pending_rows)
        self._queues: tuple[list[tuple[Any, ...]], ...] = tuple([] for _ in _TABLES)  # not journaled
        self._pending = 0  # rows not journaled yet
        self._applied = (generation, 0)  # the journal position SQLite holds the rows through
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._queued_seq = 0  # every appended row takes the next number
        self._durable_seq = 0  # rows up to this number are journaled
        self._waiters: list[tuple[int, Callable[[], None]]] = []
        self._wake = threading.Event()
        self._journal_lock = threading.Lock()  # one journal write at a time, whichever thread makes it
        self._checkpoint_due = False  # rows went into SQLite since the last WAL checkpoint
        self._stopping = False
        self._error: BaseException | None = None
        self._writer_thread = threading.Thread(target=self._run, name="capture-ledger", daemon=True)
        self._writer_thread.start()

    # -- producers (any thread) ---------------------------------------------------------------

    def table_id(self, keys: TableKeys) -> int:
        """The id of a table's registration (its key columns, types, partition columns)."""
        return self._register(
            keys.keyspace,
            keys.table,
            {c: keys.types.get(c, "") for c in keys.primary_key},
            len(keys.partition),
        )

    def column_set(self, table_id: int, columns: tuple[str, ...]) -> int:
        """The id of a set of value columns (sorted by name) of one table."""
        found = self._column_sets.get((table_id, columns))
        if found is not None:
            return found
        with self._lock:
            found = self._column_sets.get((table_id, columns))
            if found is None:
                found = len(self._column_sets) + 1
                self._column_sets[(table_id, columns)] = found
                self._append(_COLUMN_SETS, (found, table_id, json.dumps(list(columns))))
        return found

    def sent_cells(
        self, table_id: int, token: int | None, key: bytes, column_set: int | None, digest: int | None,
        fingerprint: int | None, kind: WriteKind, write_timestamp: int | None, fault: str | None,
        connection: str, stream: int,
    ) -> int:  # fmt: skip
        """Record a write as serialized cells (the proxy's form, see `cells.py`); returns its id."""
        with self._lock:
            write_id = self._next_id
            self._next_id += 1
            row = (write_id, table_id, token, key, column_set, digest, fingerprint, write_timestamp,
                   _KINDS[kind], fault, connection, stream, self.clock())  # fmt: skip
            self._append(_WRITES, row)
        return write_id

    def sent(self, write: CapturedWrite) -> int:
        """Record a write given as Python values (the key in primary-key order); returns its id."""
        table_id = self._register(write.keyspace, write.table, dict(write.key_types), None)
        codec = self._codec(table_id)
        try:
            key = codec.join([serialize(v, write.key_types.get(c, "")) for c, v in write.key.items()])
        except Exception as error:
            raise EnvironmentProblem(f"cannot serialize the key {dict(write.key)!r}: {error}") from error
        column_set = self.column_set(table_id, tuple(sorted(write.value_columns)))
        with self._lock:
            write_id = self._next_id
            self._next_id += 1
            self._append(_WRITES, (write_id, table_id, None, key, column_set, write.value_digest, None,
                                   write.write_timestamp, write.kind.value, write.fault, write.connection,
                                   write.stream, write.sent_at))  # fmt: skip
        return write_id

    def answered(
        self, write_id: int, told: Told, error_class: str | None = None, error_message: str | None = None
    ) -> int:
        """Record what the client was told about write `write_id`; returns its durability number."""
        row = (write_id, _TOLD[told], error_class, _excerpt(error_message), self.clock())
        with self._lock:
            return self._append(_ANSWERS, row)

    def answered_all(self, write_ids: Sequence[int], told: Told) -> int:
        """`answered(id, told)` for each of `write_ids` (no error); the last durability number."""
        value, now = _TOLD[told], self.clock()
        with self._lock:
            number = self._queued_seq
            for write_id in write_ids:
                number = self._append(_ANSWERS, (write_id, value, None, None, now))
        return number

    def unverifiable(self, item: Unverifiable) -> None:
        """Count a write whose key cannot be known, with its reason."""
        with self._lock:
            at = item.at or self.clock()
            row = (self._next_unverifiable_id, item.reason, item.keyspace, item.table,
                   _excerpt(item.statement) or "", item.connection, at, item.fault)  # fmt: skip
            self._next_unverifiable_id += 1
            self._append(_UNVERIFIABLE, row)

    def next_ids(self) -> tuple[int, int]:
        """The ids the next write and the next unverifiable row opened with (where a tape starts)."""
        return self._next_id, self._next_unverifiable_id

    def forget_from(self, write_id: int, unverifiable_id: int) -> None:
        """Delete the writes (with their answers) and unverifiable rows from these ids on, to record
        them again (a tape replayed from its start). Only before anything is appended."""
        with self._lock:
            if self._queued_seq:
                raise EnvironmentProblem("the capture ledger cannot forget rows once it appended some")
            self._conn.execute("BEGIN")
            self._conn.execute("DELETE FROM answers WHERE write_id >= ?", (write_id,))
            self._conn.execute("DELETE FROM writes WHERE id >= ?", (write_id,))
            self._conn.execute("DELETE FROM unverifiable WHERE id >= ?", (unverifiable_id,))
            self._conn.execute("COMMIT")
            self._next_id, self._next_unverifiable_id = write_id, unverifiable_id

    def set_meta(self, name: str, value: str) -> None:
        """Store a piece of metadata (injectors, upstream, counters) with the next commit."""
        with self._lock:
            self._append(_META, (name, value))

    def when_durable(self, number: int, callback: Callable[[], None]) -> None:
        """Call `callback` (on the writer thread, or now) once row `number` is committed."""
        with self._lock:
            if number > self._durable_seq:
                self._waiters.append((number, callback))
                self._wake.set()
                return
        callback()

    def commit_through(self, number: int) -> None:
        """Make rows through `number` durable now, on the caller's thread (one journal write of
        every row queued), unless they are already.

        For a producer that waits for its rows anyway (the proxy's loop holding a client's answers):
        no hand-over to the writer thread and back. Raises EnvironmentProblem if the ledger failed.
        """
        self._raise_if_failed()
        if number <= self._durable_seq:
            return
        try:
            self._write_journal()
        except BaseException as error:
            self._fail(error)
            raise EnvironmentProblem(f"the capture ledger failed: {error}") from error

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until everything appended so far is durable (journaled)."""
        done = threading.Event()
        with self._lock:
            number = self._queued_seq
        self.when_durable(number, done.set)
        if not done.wait(timeout_s):
            raise EnvironmentProblem(f"the capture ledger did not commit within {timeout_s} s")
        self._raise_if_failed()

    def close(self) -> None:
        """Put everything queued into SQLite, delete the journal, build the read index and close the
        file (idempotent). If the ledger failed, the journal stays for the next reader."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        self._writer_thread.join()
        self._journal.close()
        if self._error is None:
            with contextlib.suppress(OSError):
                self._journal.path.unlink()
            try:
                self._conn.execute(INDEX)
            except sqlite3.Error as error:  # verification still reads it, from an indexed copy
                log.warning("capture index not built: %s", error)
        self._conn.close()
        self._checkpointer.close()
        self._producer.release()
        self._raise_if_failed()

    def __enter__(self) -> CaptureLedger:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _register(self, keyspace: str, table: str, types: dict[str, str], partition: int | None) -> int:
        found = self._tables.get((keyspace, table))
        if found is not None:
            return found[0]
        with self._lock:
            found = self._tables.get((keyspace, table))
            if found is None:
                found = (len(self._tables) + 1, types, partition)
                self._tables[(keyspace, table)] = found
                self._append(_REGISTERED_TABLES, (found[0], keyspace, table, json.dumps(list(types)),
                                                  json.dumps(types), partition))  # fmt: skip
        return found[0]

    def _codec(self, table_id: int) -> KeyCodec:
        codec = self._codecs.get(table_id)
        if codec is None:
            for identity, types, partition in self._tables.values():
                if identity == table_id:
                    codec = self._codecs[table_id] = KeyCodec(list(types.values()), partition)
        assert codec is not None
        return codec

    def _append(self, queue: int, row: tuple[Any, ...]) -> int:
        # Called with the lock held.
        if self._error is not None:
            raise EnvironmentProblem(f"the capture ledger stopped: {self._error}")
        while self._pending >= self._max_pending and not self._stopping:
            self._wake.set()
            self._room.wait(0.5)
        self._queues[queue].append(row)
        self._pending += 1
        self._queued_seq += 1
        if self._pending == self._journal_rows:
            self._wake.set()
        return self._queued_seq

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise EnvironmentProblem(f"the capture ledger failed: {self._error}")

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            seen, active_at = -1, time.monotonic()
            while True:
                self._wake.wait(self._interval)
                self._wake.clear()
                stopping = self._stopping
                self._write_journal()
                now = time.monotonic()
                if self._queued_seq != seen:
                    seen, active_at = self._queued_seq, now
                if stopping:
                    self._apply(stop_when_busy=False)
                    self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    return
                if now - active_at >= self._idle_s or self.backlog_bytes() >= APPLY_BYTES:
                    self._apply(stop_when_busy=True)  # busy: one transaction per wake-up
                    if self._checkpoint_due:  # (it fsyncs) on a connection of its own: writers go on
                        self._checkpoint_due = False
                        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except BaseException as error:
            self._fail(error)

    def _fail(self, error: BaseException) -> None:
        """The ledger cannot go on: remember why, release every waiter (they raise or see it)."""
        if self._error is None:
            log.error("the capture ledger failed: %s", error)
            self._error = error
        with self._lock:
            waiters, self._waiters = self._waiters, []
            self._room.notify_all()
        for _, callback in waiters:
            callback()

    def _write_journal(self) -> None:
        """Journal every row queued (one write), then release the waiters it makes durable."""
        with self._journal_lock:
            with self._lock:
                batches = self._queues
                self._queues = tuple([] for _ in _TABLES)
                number = self._queued_seq
            if any(batches):
                self._journal.append(batches)
        with self._lock:
            self._pending -= sum(len(rows) for rows in batches)
            self._room.notify_all()
            self._durable_seq = max(self._durable_seq, number)
            ready = [c for n, c in self._waiters if n <= number]
            self._waiters = [(n, c) for n, c in self._waiters if n > number]
        for callback in ready:
            try:
                callback()
            except Exception as error:
                log.warning("capture durability callback failed: %s", error)

    def backlog_bytes(self) -> int:
        """Bytes of journal SQLite does not hold yet, what `close` will apply (about: earlier
        generations count whole)."""
        generation, offset = self._applied
        return self._journal.size - offset + (self._journal.generation - generation) * journal.ROTATE_BYTES

    def _apply(self, *, stop_when_busy: bool) -> None:
        """Put the journaled rows into SQLite (the writer thread), reading them back from the
        journal, each transaction with the journal position it reaches; `stop_when_busy`: stop
        between transactions once rows are appended again (the rest waits for the next pause). A
        journal grown past `ROTATE_BYTES` is replaced by the next generation's and, once applied,
        deleted."""
        with self._journal_lock:
            current = self._journal
            end = (current.generation, current.size)
            if current.size >= journal.ROTATE_BYTES and not self._stopping:
                self._journal = journal.JournalWriter(self.path.parent, current.generation + 1)
                current.close()
                end = (current.generation + 1, 0)  # the replaced generation is applied whole
        started = self._queued_seq
        while self._applied < end:
            generation, offset = self._applied
            path = journal.journal_path(self.path.parent, generation)
            size = end[1] if generation == end[0] else path.stat().st_size
            if offset < size and not self._apply_file(generation, offset, size, started, stop_when_busy):
                return
            if generation == end[0]:
                break
            self._set_applied((generation + 1, 0))  # that generation is all in SQLite
            path.unlink(missing_ok=True)

    def _apply_file(
        self, generation: int, offset: int, size: int, started: int, stop_when_busy: bool
    ) -> bool:
        """Apply one generation's records from `offset` to `size`; False: stopped, rows came."""
        path = journal.journal_path(self.path.parent, generation)
        for batches, position in _transactions(path, generation, offset, size):
            _insert_committed(self._conn, batches, position)
            self._applied = position
            self._checkpoint_due = True
            if stop_when_busy and self._queued_seq != started and position[1] < size:
                return False
        if self._applied[1] < size:  # a record cut short in the middle: it cannot be read past
            raise journal.JournalError(f"journal {path} is unreadable past byte {self._applied[1]} of {size}")
        return True

    def _set_applied(self, position: tuple[int, int]) -> None:
        self._conn.execute(_APPLIED, position)  # autocommit: one statement
        self._applied = position


def _insert_batches(conn: sqlite3.Connection, batches: Sequence[list[tuple[Any, ...]]]) -> None:
    """Insert one list of rows per ledger table (inside the caller's transaction)."""
    # Registrations first: a reader never sees a write of a table it cannot decode.
    for index in (_REGISTERED_TABLES, _COLUMN_SETS, _WRITES, _ANSWERS, _UNVERIFIABLE, _META):
        if batches[index]:
            _insert_all(conn, *_TABLES[index], batches[index])


def _apply_journal(conn: sqlite3.Connection, directory: Path) -> int:
    """Insert into `conn` (a writable ledger) what the journal of `directory` holds beyond what it
    has, record that, and delete the journal files; the last generation found (0: none). Read a
    record at a time, committed every `TRANSACTION_ROWS` rows (a killed proxy's journal can be
    large)."""
    applied_generation, applied_offset = applied_position(conn)
    found = journal.generations(directory)
    for generation in found:
        if generation < applied_generation:
            continue
        path = journal.journal_path(directory, generation)
        start = applied_offset if generation == applied_generation else 0
        for batches, position in _transactions(path, generation, start, path.stat().st_size):
            _insert_committed(conn, batches, position)
    last = max(found, default=applied_generation)
    conn.execute(_APPLIED, (last + 1, 0))
    for generation in found:
        journal.journal_path(directory, generation).unlink(missing_ok=True)
    return last


def _transactions(
    path: Path, generation: int, start: int, end: int
) -> Iterator[tuple[tuple[list[tuple[Any, ...]], ...], tuple[int, int]]]:
    """The records of one journal file from `start` to `end`, gathered into transactions of about
    `TRANSACTION_ROWS` rows, each with the journal position after it (read a record at a time: a
    large journal is never held in memory at once)."""
    batches: tuple[list[tuple[Any, ...]], ...] = tuple([] for _ in _TABLES)
    rows = 0
    for record, after in journal.iter_records(path, start, end, _WIDTHS):
        for into, read in zip(batches, record, strict=True):
            into += read
        rows += sum(len(read) for read in record)
        if rows >= TRANSACTION_ROWS:
            yield batches, (generation, after)
            batches, rows = tuple([] for _ in _TABLES), 0
    if rows:
        yield batches, (generation, after)


def _insert_committed(
    conn: sqlite3.Connection, batches: Sequence[list[tuple[Any, ...]]], position: tuple[int, int]
) -> None:
    """`batches` inserted with the journal position they reach, in one transaction."""
    conn.execute("BEGIN")
    _insert_batches(conn, batches)
    conn.execute(_APPLIED, position)
    conn.execute("COMMIT")


def apply_journal_copy(source: sqlite3.Connection, target: sqlite3.Connection, directory: Path) -> None:
    """Copy the ledger `source` into `target` with the journal's rows it does not hold yet (its
    producer may still write: the journal files are read before the copy, so a file deleted
    meanwhile was applied to what is copied)."""
    files = journal.read_files(directory)
    source.backup(target)
    target.execute("BEGIN")
    for batches in journal.unapplied(files, applied_position(target), _WIDTHS):  # one at a time
        _insert_batches(target, batches)
    target.execute("COMMIT")


def applied_position(conn: sqlite3.Connection) -> tuple[int, int]:
    """(generation, byte offset) of the journal through which `conn`'s ledger holds the rows."""
    try:
        row = conn.execute("SELECT generation, position FROM journal_applied WHERE id = 1").fetchone()
    except sqlite3.OperationalError:  # a capture from before the journal
        return (0, 0)
    return (int(row[0]), int(row[1])) if row else (0, 0)


def recover(directory: Path) -> bool:
    """Complete a capture whose producer is gone (killed) from its journal, in place, and index it
    (the caller checked its format); False (nothing done) while a producer still writes it or the
    directory cannot be written."""
    path = capture_file(directory)
    if not journal.generations(directory):
        return True
    try:
        lock = journal.ProducerLock(Path(directory))
    except OSError:
        return False
    try:
        if not lock.take():
            return False
        conn = connect_wal(path)
        try:
            conn.executescript(f"BEGIN; {_SCHEMA}; COMMIT;")
            _apply_journal(conn, Path(directory))
            conn.execute(INDEX)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
        return True
    except (OSError, sqlite3.Error) as error:
        log.warning("cannot complete the capture at %s from its journal: %s", directory, error)
        return False
    finally:
        lock.release()


def _insert_all(
    conn: sqlite3.Connection, table: str, columns: int, per_statement: int, rows: list[Any]
) -> None:
    whole = len(rows) - len(rows) % per_statement
    if whole:
        statement = _insert(table, columns, per_statement)
        conn.executemany(
            statement,
            (list(chain.from_iterable(rows[i : i + per_statement])) for i in range(0, whole, per_statement)),
        )
    # The rest in power-of-two runs: a few statement shapes per table, each compiled once and cached
    # (one shape per count recompiled a statement of up to `per_statement` rows at most commits).
    at, rest = whole, len(rows) - whole
    while rest:
        run = 1 << (rest.bit_length() - 1)
        conn.execute(_insert(table, columns, run), list(chain.from_iterable(rows[at : at + run])))
        at, rest = at + run, rest - run


def check_version(path: Path, version: int, *, allow_new: bool = False) -> None:
    if version == SCHEMA_VERSION or (allow_new and version == 0):
        return
    if 0 < version < SCHEMA_VERSION:
        raise EnvironmentProblem(
            f"{path} was written by an older astrachaos (capture format {version}; this one reads "
            f"format {SCHEMA_VERSION}): verify it with the astrachaos that captured it, or capture again"
        )
    raise EnvironmentProblem(f"{path} is not an astrachaos capture this version reads (format {version})")


def _excerpt(text: str | None, limit: int = 300) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"
