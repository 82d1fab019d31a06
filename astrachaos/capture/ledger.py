"""The capture ledger: a crash-safe SQLite file of captured writes, their answers, the unverifiable.

Same durability as a run's ledger (SQLite WAL, `synchronous=NORMAL`): a committed transaction
survives a kill -9 of the process. Producers (the proxy loop, driver callbacks) only append to a
queue; one thread commits in batches. A producer that must not tell its client anything the
ledger could lose waits for `flush()` or registers `when_durable(...)` before answering.
"""

from __future__ import annotations

import functools
import json
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from astrachaos.capture.keys import key_identity
from astrachaos.capture.model import Answer, CapturedWrite, StoredWrite, Told, Unverifiable, WriteKind
from astrachaos.errors import EnvironmentProblem, Inconclusive
from astrachaos.ledger.writer import connect_wal
from astrachaos.reconcile.schema import Column, cast

log = logging.getLogger(__name__)

FILE_NAME = "capture.sqlite"
SCHEMA_VERSION = 1
_BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS writes (
    id INTEGER PRIMARY KEY, keyspace TEXT NOT NULL, tbl TEXT NOT NULL, key TEXT NOT NULL,
    key_types TEXT NOT NULL, value_columns TEXT NOT NULL, value_digest TEXT,
    write_timestamp INTEGER, kind TEXT NOT NULL, fault TEXT, connection TEXT NOT NULL,
    stream INTEGER NOT NULL, sent_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    write_id INTEGER PRIMARY KEY, told TEXT NOT NULL, error_class TEXT, error_message TEXT,
    answered_at REAL);
CREATE TABLE IF NOT EXISTS unverifiable (
    id INTEGER PRIMARY KEY, reason TEXT NOT NULL, keyspace TEXT, tbl TEXT, statement TEXT NOT NULL,
    connection TEXT NOT NULL, at REAL NOT NULL, fault TEXT);
"""
# Built when the producer closes (not while capturing: appends stay in rowid order, cheap at any
# size); a capture whose producer was killed is read without it (SQLite sorts instead).
_INDEX = "CREATE INDEX IF NOT EXISTS writes_by_key ON writes (keyspace, tbl, key, id)"

_INSERT_WRITE = "INSERT INTO writes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_ANSWER = "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?)"
_INSERT_UNVERIFIABLE = "INSERT INTO unverifiable (reason, keyspace, tbl, statement, connection, at, fault) VALUES (?, ?, ?, ?, ?, ?, ?)"  # noqa: E501
_INSERT_META = "INSERT OR REPLACE INTO meta VALUES (?, ?)"
_STATEMENTS = (_INSERT_WRITE, _INSERT_ANSWER, _INSERT_UNVERIFIABLE, _INSERT_META)


def capture_file(directory: Path) -> Path:
    """Where the capture ledger of `directory` lives."""
    return Path(directory) / FILE_NAME


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
        max_pending_rows: int = 100_000,
    ) -> None:
        self.path = capture_file(directory)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = connect_wal(self.path)
            self._conn.executescript(f"BEGIN; {_SCHEMA}; COMMIT;")
            self._conn.execute("PRAGMA cache_size = -32768")  # 32 MB: commits stay in memory
            (version,) = self._conn.execute("PRAGMA user_version").fetchone()
            if version not in (0, SCHEMA_VERSION):
                raise EnvironmentProblem(
                    f"{self.path} is capture schema {version}; this astrachaos writes {SCHEMA_VERSION}"
                )
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            (last,) = self._conn.execute("SELECT coalesce(max(id), 0) FROM writes").fetchone()
            if meta:
                self._conn.executemany(_INSERT_META, meta.items())
        except (OSError, sqlite3.Error) as error:
            raise EnvironmentProblem(f"cannot open the capture ledger at {self.path}: {error}") from error
        self._next_id = int(last) + 1
        self._interval = commit_interval_s
        self._max_pending = max_pending_rows
        self._queues: tuple[deque[tuple[Any, ...]], ...] = tuple(deque() for _ in _STATEMENTS)
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._queued_seq = 0  # every appended row takes the next number
        self._durable_seq = 0  # rows up to this number are committed
        self._waiters: list[tuple[int, Callable[[], None]]] = []
        self._wake = threading.Event()
        self._stopping = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="capture-ledger", daemon=True)
        self._thread.start()

    # -- producers (any thread) ---------------------------------------------------------------

    def sent(self, write: CapturedWrite) -> int:
        """Record a write leaving for the database; returns its id for `answered`."""
        row = [
            0, write.keyspace, write.table, key_identity(write.key), _types_json(write.key_types),
            _columns_json(write.value_columns), write.value_digest, write.write_timestamp,
            write.kind.value, write.fault, write.connection, write.stream, write.sent_at,
        ]  # fmt: skip
        with self._lock:
            write_id = self._next_id
            self._next_id += 1
            row[0] = write_id
            self._append(0, tuple(row))
        return write_id

    def answered(
        self, write_id: int, told: Told, error_class: str | None = None, error_message: str | None = None
    ) -> int:
        """Record what the client was told about write `write_id`; returns its durability number."""
        row = (write_id, told.value, error_class, _excerpt(error_message), time.time())
        with self._lock:
            return self._append(1, row)

    def unverifiable(self, item: Unverifiable) -> None:
        """Count a write whose key cannot be known, with its reason."""
        row = (item.reason, item.keyspace, item.table, _excerpt(item.statement) or "", item.connection,
               item.at or time.time(), item.fault)  # fmt: skip
        with self._lock:
            self._append(2, row)

    def set_meta(self, name: str, value: str) -> None:
        """Store a piece of metadata (injectors, upstream, counters) with the next commit."""
        with self._lock:
            self._append(3, (name, value))

    def when_durable(self, number: int, callback: Callable[[], None]) -> None:
        """Call `callback` (on the writer thread, or now) once row `number` is committed."""
        with self._lock:
            if number > self._durable_seq:
                self._waiters.append((number, callback))
                self._wake.set()
                return
        callback()

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait until everything appended so far is committed."""
        done = threading.Event()
        with self._lock:
            number = self._queued_seq
        self.when_durable(number, done.set)
        if not done.wait(timeout_s):
            raise EnvironmentProblem(f"the capture ledger did not commit within {timeout_s} s")
        self._raise_if_failed()

    def close(self) -> None:
        """Commit what is queued and close the file (idempotent)."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join()
        try:
            self._conn.execute(_INDEX)
        except sqlite3.Error as error:  # verification still reads it, sorting instead
            log.warning("capture index not built: %s", error)
        self._conn.close()
        self._raise_if_failed()

    def __enter__(self) -> CaptureLedger:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _append(self, queue: int, row: tuple[Any, ...]) -> int:
        # Called with the lock held.
        if self._error is not None:
            raise EnvironmentProblem(f"the capture ledger stopped: {self._error}")
        while self._pending() >= self._max_pending and not self._stopping:
            self._wake.set()
            self._room.wait(0.5)
        self._queues[queue].append(row)
        self._queued_seq += 1
        if len(self._queues[queue]) >= 2_000:
            self._wake.set()
        return self._queued_seq

    def _pending(self) -> int:
        return sum(len(q) for q in self._queues)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise EnvironmentProblem(f"the capture ledger failed: {self._error}")

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait(self._interval)
                self._wake.clear()
                stopping = self._stopping
                self._commit()
                if stopping:
                    self._commit()
                    return
        except BaseException as error:
            log.error("the capture ledger failed: %s", error)
            self._error = error
            with self._lock:
                waiters, self._waiters = self._waiters, []
                self._room.notify_all()
            for _, callback in waiters:
                callback()

    def _commit(self) -> None:
        with self._lock:
            batches = [list(q) for q in self._queues]
            for q in self._queues:
                q.clear()
            number = self._queued_seq
            self._room.notify_all()
        if any(batches):
            self._conn.execute("BEGIN")
            for statement, rows in zip(_STATEMENTS, batches, strict=True):
                if rows:
                    self._conn.executemany(statement, rows)
            self._conn.execute("COMMIT")
        with self._lock:
            self._durable_seq = number
            ready = [c for n, c in self._waiters if n <= number]
            self._waiters = [(n, c) for n, c in self._waiters if n > number]
        for callback in ready:
            try:
                callback()
            except Exception as error:
                log.warning("capture durability callback failed: %s", error)


class CaptureReader:
    """Reads a capture ledger (read-only: a proxy may still be writing it)."""

    def __init__(self, directory: Path) -> None:
        self.path = capture_file(directory)
        if not self.path.is_file():
            raise Inconclusive(f"no capture at {directory} (no {FILE_NAME})")
        try:
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._conn.execute("SELECT count(*) FROM writes").fetchone()
        except sqlite3.Error as error:
            raise Inconclusive(f"cannot read the capture at {self.path}: {error}") from error

    def meta(self) -> dict[str, str]:
        """The metadata producers stored."""
        return dict(self._conn.execute("SELECT name, value FROM meta"))

    def tables(self) -> list[tuple[str, str]]:
        """Every (keyspace, table) with captured writes."""
        return [
            tuple(r) for r in self._conn.execute("SELECT DISTINCT keyspace, tbl FROM writes ORDER BY 1, 2")
        ]

    def count(self) -> int:
        """How many writes were captured."""
        return int(self._conn.execute("SELECT count(*) FROM writes").fetchone()[0])

    def writes(self, keyspace: str, table: str) -> Iterator[StoredWrite]:
        """The captured writes to one table, grouped by key, in the order they were sent."""
        rows = self._conn.execute(
            "SELECT w.*, a.told, a.error_class, a.error_message, a.answered_at FROM writes w"
            " LEFT JOIN answers a ON a.write_id = w.id WHERE w.keyspace = ? AND w.tbl = ?"
            " ORDER BY w.key, w.id",
            (keyspace, table),
        )
        for row in rows:
            yield _stored(row)

    def unverifiable(self) -> list[Unverifiable]:
        """Every write counted as unverifiable."""
        rows = self._conn.execute(
            "SELECT reason, keyspace, tbl, statement, connection, at, fault FROM unverifiable ORDER BY id"
        )
        return [Unverifiable(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]

    def close(self) -> None:
        """Close the file."""
        self._conn.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _stored(row: tuple[Any, ...]) -> StoredWrite:
    (write_id, keyspace, table, key_text, types_text, value_columns, digest, timestamp, kind, fault,
     connection, stream, sent_at, told, error_class, error_message, answered_at) = row  # fmt: skip
    types: dict[str, str] = json.loads(types_text)
    encoded: dict[str, Any] = json.loads(key_text)
    key = {name: cast(Column(name, types.get(name, "text"), "key"), value) for name, value in encoded.items()}
    write = CapturedWrite(
        keyspace=keyspace, table=table, key=key, key_types=types, value_digest=digest,
        kind=WriteKind(kind), connection=connection, stream=stream, sent_at=sent_at,
        value_columns=tuple(json.loads(value_columns)), write_timestamp=timestamp, fault=fault,
    )  # fmt: skip
    answer = Answer(Told(told), error_class, error_message, answered_at) if told else Answer(Told.NO_ANSWER)
    return StoredWrite(write_id, write, answer)


@functools.lru_cache(maxsize=1024)
def _columns_json(columns: tuple[str, ...]) -> str:
    return json.dumps(list(columns))


def _types_json(types: Mapping[str, str]) -> str:
    return _types_json_of(tuple(types.items()))


@functools.lru_cache(maxsize=1024)
def _types_json_of(items: tuple[tuple[str, str], ...]) -> str:
    return json.dumps(dict(items))


def _excerpt(text: str | None, limit: int = 300) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


