"""The durable ledger: every intended write, and what the driver and the application believed.

SQLite in WAL mode with `synchronous=NORMAL`: a committed transaction survives a kill of the
astrachaos process; a crash of the operating system (or a power cut) may lose the last few
transactions, never the integrity of the file. Event handlers only enqueue tuples; one
background thread commits them in batches.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import sqlite3
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from itertools import chain, islice
from pathlib import Path
from types import TracebackType
from typing import Any

from astrachaos.errors import EnvironmentProblem
from astrachaos.events import (
    RECORD_DIGEST,
    AppLogged,
    DriverOutcome,
    EventBus,
    FaultWindow,
    PartitionsPrinted,
    RecordsPlanned,
    WriteCompleted,
)
from astrachaos.ledger.prints import PRINTS_SCHEMA, absorb_prints, save_prints
from astrachaos.ledger.reader import READ_INDEXES, LedgerCounts, LedgerReader, LedgerRecord
from astrachaos.ledger.totals import TOTALS_SCHEMA, TotalsKeeper, absorb_totals

__all__ = ["FaultWindow", "Ledger", "LedgerCounts", "LedgerRecord"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: digests cover key, record_id and payload; read indexes built while writing
_BUSY_TIMEOUT_MS = 30_000

_SCHEMA = (
    """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE planned (
    record_id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, batch INTEGER NOT NULL,
    bucket INTEGER NOT NULL, key INTEGER NOT NULL, digest TEXT NOT NULL,
    planned_ns INTEGER NOT NULL);
CREATE TABLE completions (
    record_id INTEGER NOT NULL, outcome TEXT NOT NULL, attempts INTEGER NOT NULL,
    submitted_ns INTEGER NOT NULL, completed_ns INTEGER NOT NULL,
    error_class TEXT, error_message TEXT);
CREATE TABLE app_logs (
    record_id INTEGER NOT NULL, success INTEGER NOT NULL, at_ns INTEGER NOT NULL);
CREATE TABLE fault_windows (
    window_id INTEGER PRIMARY KEY, injector TEXT NOT NULL, kind TEXT NOT NULL,
    start_ns INTEGER NOT NULL, end_ns INTEGER);
"""
    + READ_INDEXES
    + TOTALS_SCHEMA
    + PRINTS_SCHEMA
)  # indexes and totals grow while the run writes

# Per queue: the table and columns a row fills. Rows go in multi-row statements of 512, then 64,
# 8 and 1 rows: few statement steps per commit, half the CPU of one row per statement, and few
# GIL hand-offs (pysqlite releases the GIL around each step and may wait 5 ms to get it back).
_TARGETS = (
    ("planned", 7),
    ("completions (record_id, outcome, attempts, submitted_ns, completed_ns)", 5),
    ("completions", 7),
    ("app_logs", 3),
)
_CHUNKS = (512, 64, 8, 1)


def _insert(target: str, columns: int, rows: int) -> str:
    row = "(" + ", ".join("?" * columns) + ")"
    return f"INSERT INTO {target} VALUES " + ", ".join([row] * rows)


_INSERTS = tuple(tuple((size, _insert(t, n, size)) for size in _CHUNKS) for t, n in _TARGETS)

_OUTCOME_TEXT = {outcome: outcome.value for outcome in DriverOutcome}


_Row = tuple[Any, ...]  # one row of a ledger table, as SQLite takes and gives it


class Ledger:
    """An append-only SQLite ledger of one run, fed by workload events.

    Handlers turn an event into row tuples, append them to a deque and return. When more than
    `max_pending_rows` rows of one table wait for the writer thread, the publishing thread (a
    workload writer, or the driver's callback thread) blocks until the writer makes room: the
    workload slows to the ledger's pace, and no row is dropped to keep up.
    """

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        *,
        commit_rows: int = 5_000,
        commit_interval_s: float = 0.05,
        max_pending_rows: int = 50_000,
    ) -> None:
        self.path = path
        self._conn = conn
        self._commit_rows = commit_rows
        self._commit_interval_s = commit_interval_s
        self._max_pending_rows = max(max_pending_rows, commit_rows)
        # One deque per insert statement, in _INSERTS order. append/extend/popleft are atomic,
        # so producers take no lock; only the writer thread pops.
        self._planned: deque[_Row] = deque()
        self._completed: deque[_Row] = deque()
        self._completed_with_error: deque[_Row] = deque()
        self._app_logged: deque[_Row] = deque()
        self._queues = (self._planned, self._completed, self._completed_with_error, self._app_logged)
        self._flushes: deque[threading.Event] = deque()
        self._wake = threading.Event()
        self._room = threading.Condition()
        self._accepting = False
        self._stopping = False
        self._closed = False
        self._warned_late = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._indexed = False
        self._read_only = False
        self._read_path = path
        self._totals = TotalsKeeper()  # fed by the writer thread, one queue at a time
        totals = self._totals
        self._seers = (totals.see_planned, totals.see_completed, totals.see_completed, totals.see_app_logged)

    @classmethod
    def create(
        cls,
        path: Path,
        run_id: str,
        meta: Mapping[str, str],
        *,
        commit_rows: int = 5_000,
        commit_interval_s: float = 0.05,
        max_pending_rows: int = 50_000,
    ) -> Ledger:
        """Create a new ledger file at `path` holding `run_id` and `meta`; refuse to overwrite."""
        if path.exists():
            raise EnvironmentProblem(f"a ledger already exists at {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = connect_wal(path)
            conn.executescript(f"BEGIN; {_SCHEMA}; PRAGMA user_version = {SCHEMA_VERSION};")
            values = {"run_id": run_id, "created_ns": str(time.time_ns()), "digest": RECORD_DIGEST, **meta}
            conn.executemany("INSERT INTO meta VALUES (?, ?)", values.items())
            conn.execute("COMMIT")
        except (OSError, sqlite3.Error) as exc:
            raise EnvironmentProblem(f"cannot create the ledger at {path}: {exc}") from exc
        return cls(
            path,
            conn,
            commit_rows=commit_rows,
            commit_interval_s=commit_interval_s,
            max_pending_rows=max_pending_rows,
        )

    @classmethod
    def open(cls, path: Path, *, read_only: bool = True) -> Ledger:
        """Open an existing ledger (read-only unless asked), also one whose writer was killed.

        Reading is evidence-safe: the file is opened with SQLite's `mode=ro` (and `immutable=1`
        when no write-ahead log is beside it, so not even a -wal or -shm file is created), and a
        ledger from before the read indexes is indexed in a temporary copy, never in place.
        """
        if not path.is_file():
            raise EnvironmentProblem(f"no ledger at {path}")
        try:
            conn = _connect_read_only(path) if read_only else connect_wal(path)
            (version,) = conn.execute("PRAGMA user_version").fetchone()
        except sqlite3.Error as exc:
            raise EnvironmentProblem(f"cannot open the ledger at {path}: {exc}") from exc
        if version != SCHEMA_VERSION:
            conn.close()
            what = (
                f"was written by an older astrachaos (ledger schema {version}, this one reads "
                f"{SCHEMA_VERSION})"
                if 0 < version < SCHEMA_VERSION
                else f"is not an astrachaos ledger (schema {version})"
            )
            raise EnvironmentProblem(f"{path} {what}")
        ledger = cls(path, conn)
        if not read_only:
            return ledger
        ledger._read_only = True
        try:
            ledger._read_path = _indexed_copy_if_needed(conn, path)
        except (OSError, sqlite3.Error) as exc:
            conn.close()
            raise EnvironmentProblem(f"cannot read the ledger at {path}: {exc}") from exc
        ledger._indexed = True
        return ledger

    # -- writing -------------------------------------------------------------------------------

    def subscribe(self, bus: EventBus) -> None:
        """Record every RecordsPlanned, WriteCompleted and AppLogged published on `bus`."""
        if self._closed:
            raise RuntimeError("the ledger is closed")
        bus.subscribe(RecordsPlanned, self._on_planned)
        bus.subscribe(WriteCompleted, self._on_completed)
        bus.subscribe(AppLogged, self._on_app_logged)
        bus.subscribe(PartitionsPrinted, self._on_printed)
        if self._thread is None:
            self._accepting = True
            self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
            self._thread.start()
            atexit.register(self._close_at_exit)

    # The handlers run on the publishing threads, millions of times: plain loops, local names,
    # exact str/int parameters only (pysqlite binds anything else, None included, the slow way).

    def _on_planned(self, event: RecordsPlanned) -> None:
        if not self._accepting:
            return self._refuse()
        at_ns, queue = event.at_ns, self._planned
        append = queue.append
        for r in event.records:
            append((r.record_id, r.writer, r.batch, r.bucket, r.key, r.digest, at_ns))
        if len(queue) >= self._commit_rows:
            self._press(queue)

    def _on_completed(self, event: WriteCompleted) -> None:
        if not self._accepting:
            return self._refuse()
        e, outcome = event, _OUTCOME_TEXT[event.outcome]
        if e.error_class is None and e.error_message is None:
            queue = self._completed  # the error columns stay NULL without binding None
            append = queue.append
            for rid in e.record_ids:
                append((rid, outcome, e.attempts, e.submitted_ns, e.completed_ns))
        else:
            queue = self._completed_with_error
            append = queue.append
            for rid in e.record_ids:
                append(
                    (rid, outcome, e.attempts, e.submitted_ns, e.completed_ns, e.error_class, e.error_message)
                )
        if len(queue) >= self._commit_rows:
            self._press(queue)

    def _on_app_logged(self, event: AppLogged) -> None:
        if not self._accepting:
            return self._refuse()
        success, at_ns, queue = int(event.success), event.at_ns, self._app_logged
        append = queue.append
        for rid in event.record_ids:
            append((rid, success, at_ns))
        if len(queue) >= self._commit_rows:
            self._press(queue)

    def _on_printed(self, event: PartitionsPrinted) -> None:
        if not self._accepting:
            return self._refuse()
        with self._writing() as conn:  # once per writer and run: no queue
            save_prints(conn, event.writer, event.prints)

    def _press(self, queue: deque[_Row]) -> None:
        if not self._wake.is_set():
            self._wake.set()
        if len(queue) > self._max_pending_rows:
            with self._room:
                while len(queue) > self._max_pending_rows and self._accepting:
                    self._room.wait(self._commit_interval_s)

    def _refuse(self) -> None:
        if self._error is None and not self._warned_late:
            self._warned_late = True
            log.warning("events published after the ledger was closed are not recorded")

    @property
    def pending_rows(self) -> int:
        """Rows accepted but not yet committed."""
        return sum(len(queue) for queue in self._queues)

    def flush(self) -> None:
        """Block until every event accepted so far is committed; raise if the writer failed."""
        thread = self._thread
        if thread is not None and self._accepting:
            done = threading.Event()
            self._flushes.append(done)
            self._wake.set()
            while not done.wait(0.1) and thread.is_alive():
                pass
        self._raise_if_failed()

    def close(self) -> None:
        """Flush, stop the writer thread and close the file; raise if the writer failed."""
        if not self._closed:
            self._closed = True
            self._accepting = False
            self._stopping = True
            self._wake.set()
            if self._thread is not None:
                self._thread.join()
                atexit.unregister(self._close_at_exit)
                if self.pending_rows and self._error is None:
                    log.warning("%d rows arrived while the ledger closed", self.pending_rows)
            self._conn.close()
            if self._read_path != self.path:
                shutil.rmtree(self._read_path.parent, ignore_errors=True)
        self._raise_if_failed()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _close_at_exit(self) -> None:
        try:
            self.close()
        except EnvironmentProblem as exc:
            log.error("%s", exc)

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise EnvironmentProblem(
                f"the ledger at {self.path} could not be written: {self._error}",
                hint="check free disk space and permissions of the run directory",
            ) from self._error

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait(self._commit_interval_s)
                self._wake.clear()
                stopping = self._stopping  # read before draining: the last drain sees everything
                self._commit_queued()
                if stopping:
                    return
        except BaseException as exc:  # a writer that dies must fail the run loudly
            log.error("ledger writer failed: %s", exc)
            self._error = exc
            self._accepting = False
            for queue in self._queues:
                queue.clear()
            with self._room:
                self._room.notify_all()

    def _commit_queued(self) -> None:
        # Flush requests first: every row appended before one of them is counted below.
        flushes = [self._flushes.popleft() for _ in range(len(self._flushes))]
        counts = [len(queue) for queue in self._queues]
        if any(counts):
            self._write(counts)
            with self._room:
                self._room.notify_all()
        for done in flushes:
            done.set()

    def _write(self, counts: list[int]) -> None:
        conn = self._conn
        conn.execute("BEGIN")
        try:
            for statements, queue, left, see in zip(_INSERTS, self._queues, counts, self._seers, strict=True):
                taken = list(islice(iter(queue.popleft, None), left))  # no Python loop per row
                see(taken)
                rows = iter(taken)
                for size, insert in statements:
                    full, left = divmod(left, size)
                    if full:
                        chunks = (list(chain.from_iterable(islice(rows, size))) for _ in range(full))
                        conn.executemany(insert, chunks)
            self._totals.save(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    # -- meta and fault windows (rare, written synchronously on a connection of their own) -----

    def set_meta(self, values: Mapping[str, str]) -> None:
        """Add or replace run metadata (scenario, seed, keyspace, finished_at, ...)."""
        if "started_ns" in values:  # the origin of the acknowledged totals' seconds
            self._totals.start_at(int(values["started_ns"]))
        with self._writing() as conn:
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())

    def record_fault_window(self, window: FaultWindow) -> int:
        """Record that a fault started (and maybe ended); return the window's id."""
        with self._writing() as conn:
            cursor = conn.execute(
                "INSERT INTO fault_windows (injector, kind, start_ns, end_ns) VALUES (?, ?, ?, ?)",
                (window.injector, window.kind, window.start_ns, window.end_ns),
            )
            return int(cursor.lastrowid or 0)

    def end_fault_window(self, window_id: int, end_ns: int) -> None:
        """Record when an open fault window ended."""
        with self._writing() as conn:
            conn.execute("UPDATE fault_windows SET end_ns = ? WHERE window_id = ?", (end_ns, window_id))

    def absorb(self, segment: Path) -> int:
        """Merge a writer process's ledger segment into this ledger, then delete the segment.

        One transaction: a crash leaves either the segment or its rows here, never both halves.
        Returns the planned records it brought.
        """
        try:
            conn = connect_wal(self.path)
        except sqlite3.Error as exc:
            raise EnvironmentProblem(f"cannot write the ledger at {self.path}: {exc}") from exc
        try:
            conn.execute("ATTACH DATABASE ? AS segment", (str(segment),))
            conn.execute("BEGIN IMMEDIATE")
            (planned,) = conn.execute("SELECT COUNT(*) FROM segment.planned").fetchone()
            absorb_totals(conn)
            absorb_prints(conn)
            conn.execute("INSERT INTO planned SELECT * FROM segment.planned")
            conn.execute("INSERT INTO completions SELECT * FROM segment.completions")
            conn.execute("INSERT INTO app_logs SELECT * FROM segment.app_logs")
            conn.execute(
                "INSERT INTO fault_windows (injector, kind, start_ns, end_ns)"
                " SELECT injector, kind, start_ns, end_ns FROM segment.fault_windows"
            )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise EnvironmentProblem(f"cannot merge the ledger segment {segment}: {exc}") from exc
        finally:
            conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{segment}{suffix}").unlink(missing_ok=True)
        return int(planned)

    # -- reading -------------------------------------------------------------------------------

    def iter_records(self) -> Iterator[LedgerRecord]:
        """Every planned record with its final outcome, ordered by (bucket, key, record_id)."""
        conn = self._reader()
        try:
            yield from LedgerReader(conn).records()
        except sqlite3.Error as exc:
            raise EnvironmentProblem(f"cannot read the ledger at {self.path}: {exc}") from exc
        finally:
            conn.close()

    @contextmanager
    def reading(self) -> Iterator[LedgerReader]:
        """One read connection for a series of queries (verification's set-based reads)."""
        with self._reading() as conn:
            yield LedgerReader(conn)

    def counts(self) -> LedgerCounts:
        """How many records ended in each outcome and each app-log verdict."""
        with self.reading() as reader:
            return reader.counts()

    def meta(self) -> dict[str, str]:
        """The run's metadata as written by `create` and `set_meta`."""
        with self._reading() as conn:
            return dict(conn.execute("SELECT name, value FROM meta ORDER BY name"))

    def fault_windows(self) -> list[FaultWindow]:
        """Every recorded fault window, in order of start."""
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT injector, kind, start_ns, end_ns, window_id FROM fault_windows"
                " ORDER BY start_ns, window_id"
            )
            return [FaultWindow(*row) for row in rows]

    def buckets(self) -> list[int]:
        """The distinct buckets of the planned records, ascending."""
        with self.reading() as reader:
            return reader.buckets()

    def record_count(self) -> int:
        """How many records were planned."""
        with self._reading() as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM planned").fetchone()
            return int(count)

    def _reader(self) -> sqlite3.Connection:
        try:
            if self._read_only:
                return _connect_read_only(self._read_path)
            conn = connect_wal(self.path)
            if not self._indexed:
                conn.executescript(READ_INDEXES)
                self._indexed = True
        except sqlite3.Error as exc:
            raise EnvironmentProblem(f"cannot read the ledger at {self.path}: {exc}") from exc
        return conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        conn = self._reader()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise EnvironmentProblem(f"cannot read the ledger at {self.path}: {exc}") from exc
        finally:
            conn.close()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        if self._read_only:
            raise RuntimeError(f"the ledger at {self.path} was opened read-only")
        try:
            conn = connect_wal(self.path)
        except sqlite3.Error as exc:
            raise EnvironmentProblem(f"cannot write the ledger at {self.path}: {exc}") from exc
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise EnvironmentProblem(f"cannot write the ledger at {self.path}: {exc}") from exc
        finally:
            conn.close()


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot change the file; without a -wal beside it, not even create one."""
    wal = path.with_name(path.name + "-wal")
    flags = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?{flags}", uri=True, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    return conn


def _indexed_copy_if_needed(conn: sqlite3.Connection, path: Path) -> Path:
    """`path` if it has the read indexes; else a temporary copy that has them (deleted on close)."""
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    if {"planned_by_bucket", "completions_by_record", "app_logs_by_record"} <= present:
        return path
    copy = Path(tempfile.mkdtemp(prefix="astrachaos-ledger-")) / path.name
    target = sqlite3.connect(copy)
    try:
        conn.backup(target)
        target.executescript(READ_INDEXES)
    finally:
        target.close()
    return copy


def connect_wal(path: Path) -> sqlite3.Connection:
    """A writing connection in WAL mode, the durability every ledger relies on (else OperationalError)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if mode != "wal":
        conn.close()
        raise sqlite3.OperationalError(f"the file system does not allow WAL mode ({mode})")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn
