"""Read a run back and classify every record: partition scans, a settle window, a strong re-read.

One partition at a time (the next ones read meanwhile) is joined with what the ledger planned in
it: acknowledged records found as written are settled in bulk, the rest one by one. Memory stays
bounded by a few partitions plus the records that are not `ok`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from astrachaos.driver.table import RunTable
from astrachaos.errors import EnvironmentProblem
from astrachaos.events import DriverOutcome, FaultWindow
from astrachaos.ledger.reader import AckedTotals, LedgerReader, LedgerRecord, second_of
from astrachaos.ledger.writer import Ledger
from astrachaos.scenario import Verify
from astrachaos.verify.classify import RecordClass, Seen, classify, is_silent
from astrachaos.workload.plan import Digest, applied_digest, digest_of

log = logging.getLogger(__name__)
_READ_ATTEMPTS = 3
READ_AHEAD = 3  # partitions read while one is joined
Stored = tuple[int, "int | None", str, int]  # key, record_id, digest, applications: a row as read


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A row of the run as read from the table."""

    key: int
    record_id: int | None
    digest: str
    applications: int  # times its record_id was appended; 1 for a row written by INSERT


@dataclass(frozen=True)
class NotOk:
    """One record (or stray row) whose class is not `ok`, with everything needed to chase it."""

    record_id: int | None
    bucket: int
    key: int
    record_class: RecordClass
    silent: bool
    outcome: str | None
    attempts: int
    error_class: str | None
    error_message: str | None
    writer: int | None
    batch: int | None
    app_logged: bool | None
    found: str
    faults: tuple[str, ...] = ()


@dataclass
class Verification:
    """Everything verification learned; plain data for the result."""

    counts: Counter[RecordClass] = field(default_factory=Counter)
    silent: int = 0
    app_logged_success: int = 0
    acknowledged: int = 0
    records: int = 0
    present: int = 0
    not_ok: list[NotOk] = field(default_factory=list)
    by_writer: Counter[tuple[int, str]] = field(default_factory=Counter)
    by_batch: Counter[tuple[int, int, str]] = field(default_factory=Counter)
    by_error: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_second: Counter[tuple[int, str]] = field(default_factory=Counter)
    silent_by_error: Counter[str] = field(default_factory=Counter)
    unread_buckets: list[int] = field(default_factory=list)
    reread_consistency: str | None = None
    windows: list[FaultWindow] = field(default_factory=list)
    rows_read: int = 0
    seconds: float = 0.0


class PartitionReader:
    """Reads whole partitions of the run table at a given consistency, paged, with retries.

    Rows come back as plain tuples (no named tuple per row) and become `Stored` tuples at once;
    `rows_read` counts every row, from whichever thread read it.
    """

    def __init__(
        self, session: Any, table: RunTable, run_id: str, page_size: int, digest: Digest = digest_of
    ) -> None:
        from cassandra import InvalidRequest
        from cassandra.cluster import EXEC_PROFILE_DEFAULT
        from cassandra.query import tuple_factory

        self._session = session
        try:
            self._prepared = session.prepare(table.partition_cql())
        except InvalidRequest as error:  # the run's table (or keyspace) was dropped since the run
            raise EnvironmentProblem(
                f"cannot read the run table {table.qualified}: {_server_message(error)}; "
                "nothing can be verified against it (the ledger is intact)",
                hint="a dropped table cannot be verified; re-run the scenario to test again",
            ) from None
        self._profile = session.execution_profile_clone_update(
            EXEC_PROFILE_DEFAULT, row_factory=tuple_factory
        )
        self._run_id = run_id
        self._page_size = page_size
        self.digest = digest
        self._count_lock = threading.Lock()
        self.rows_read = 0

    def scan(self, bucket: int, consistency: str) -> list[Stored]:
        """`Stored` of every row of partition (run_id, bucket); raises after retries."""
        from cassandra import ConsistencyLevel

        level = ConsistencyLevel.name_to_value[consistency]
        for attempt in range(1, _READ_ATTEMPTS + 1):
            try:
                bound = self._prepared.bind((self._run_id, bucket))
                bound.fetch_size = self._page_size
                bound.consistency_level = level
                rows = self._session.execute(bound, execution_profile=self._profile)
                digest = self.digest
                stored = [_stored(row, digest) for row in rows]
                with self._count_lock:
                    self.rows_read += len(stored)
                return stored
            except Exception as error:  # read timeouts, unavailable replicas: retry, then give up
                if attempt == _READ_ATTEMPTS:
                    raise
                log.warning("read of bucket %s failed (%s), retrying", bucket, error)
                time.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    def read(self, bucket: int, consistency: str) -> dict[int, StoredRow]:
        """Every row of partition (run_id, bucket), by clustering key; raises after retries."""
        return {row[0]: StoredRow(*row) for row in self.scan(bucket, consistency)}


def _stored(row: Sequence[Any], digest_of: Digest) -> Stored:
    """A row read as (key, record_id, payload, applied), with its applications counted.

    A row written more than once by a list append gets a digest no planned record has.
    """
    key, record_id, payload, applied = row
    digest = digest_of(key, record_id, payload)
    if applied is None or len(applied) < 2:  # written once, or by INSERT: the common case
        return key, record_id, digest, 1
    applications = max(1, applied.count(record_id))
    return key, record_id, applied_digest(digest, applications), applications


def _prefetched(
    reader: PartitionReader, buckets: Sequence[int], consistency: str
) -> Iterator[tuple[int, list[Stored] | Exception]]:
    """The buckets' rows in order, the next partitions read while the caller joins this one.

    READ_AHEAD partitions are in flight besides the one being joined: memory stays bounded.
    """
    with ThreadPoolExecutor(READ_AHEAD, thread_name_prefix="verify-read") as pool:
        ahead: deque[tuple[int, Future[list[Stored]]]] = deque()
        upcoming = iter(buckets)
        for bucket in itertools.islice(upcoming, READ_AHEAD):
            ahead.append((bucket, pool.submit(reader.scan, bucket, consistency)))
        while ahead:
            bucket, future = ahead.popleft()
            for following in itertools.islice(upcoming, 1):
                ahead.append((following, pool.submit(reader.scan, following, consistency)))
            try:
                yield bucket, future.result()
            except Exception as error:
                yield bucket, error


def _seen(record: LedgerRecord, row: StoredRow | None, same_key_ids: Container[int]) -> Seen:
    if row is None:
        return Seen.ABSENT
    if row.record_id != record.record_id:
        return Seen.OTHER if row.record_id in same_key_ids else Seen.CORRUPT
    if row.digest == record.digest:
        return Seen.OWN
    if row.digest == applied_digest(record.digest, row.applications):
        return Seen.REPEATED
    return Seen.CORRUPT


@dataclass
class _Open:
    """The part of a bucket not settled in bulk: records to classify one by one, stray rows."""

    records: list[tuple[LedgerRecord, Seen, dict[int, LedgerRecord]]] = field(default_factory=list)
    strays: dict[int, StoredRow] = field(default_factory=dict)


def verify(
    reader: PartitionReader,
    ledger: Ledger,
    buckets: Iterable[int],
    spec: Verify,
    run_started_ns: int,
    sleep: Callable[[float], None] = time.sleep,
    windows: Sequence[FaultWindow] = (),
) -> Verification:
    """Classify every ledger record against the table; list every record that is not `ok`.

    `buckets` are the partitions the run may have written (rows there without a record are
    `unexpected`). `windows` are the fault windows of the run; each record that is not ok is
    tagged with those active while it was written.

    A record is `ok` when it was acknowledged and its own row, applied once, is at its key. Those
    are settled in bulk: a set intersection of what the ledger planned with what the partition
    holds, counted by SQL on a second connection while the partitions are read. Only the rest is
    read from the ledger record by record and classified.
    """
    began = time.monotonic()
    result = Verification(windows=list(windows))
    taken: list[LedgerRecord] = []  # acknowledged records found not `ok` (or left unread)
    with ThreadPoolExecutor(2, thread_name_prefix="verify-totals") as pool:
        totals = pool.submit(_totals, ledger, run_started_ns)
        unacked = pool.submit(_unacknowledged, ledger)  # meanwhile the first partitions are read
        with ledger.reading() as records:
            ok = _classify(reader, records, buckets, spec, run_started_ns, sleep, result, taken, unacked)
        acked, result.app_logged_success = totals.result()
    result.acknowledged = acked.count
    for record in taken:
        acked.remove(record, run_started_ns)
    _add_ok(result, ok, acked)
    _point_to_misplaced(result)
    result.rows_read = reader.rows_read
    result.seconds = time.monotonic() - began
    return result


def reread_levels(consistency: str) -> list[str]:
    """Levels of the strong re-read, in order: ALL falls back to QUORUM (a replica may be down)."""
    return [consistency] + (["QUORUM"] if consistency == "ALL" else [])


def _totals(ledger: Ledger, run_started_ns: int) -> tuple[AckedTotals, int]:
    with ledger.reading() as records:
        return records.acked_totals(run_started_ns), records.app_logged_success()


def _unacknowledged(ledger: Ledger) -> set[str]:
    with ledger.reading() as records:
        return records.unacknowledged()


def _classify(
    reader: PartitionReader,
    ledger: LedgerReader,
    buckets: Iterable[int],
    spec: Verify,
    run_started_ns: int,
    sleep: Callable[[float], None],
    result: Verification,
    taken: list[LedgerRecord],
    unacknowledged: Future[set[str]],
) -> int:
    """Classify the records that are not `ok` into `result`; return how many are."""
    unacked: set[str] | None = None
    ledger_buckets = set(ledger.buckets())
    pending: dict[int, list[tuple[LedgerRecord, Seen, dict[int, LedgerRecord]]]] = {}
    present_by_bucket: dict[int, int] = {}
    unexpected: dict[int, dict[int, StoredRow]] = {}
    ok = 0
    order = sorted(ledger_buckets.union(buckets))
    for bucket, rows in _prefetched(reader, order, spec.read_consistency):
        planned = ledger.planned_in(bucket) if bucket in ledger_buckets else set()
        result.records += len(planned)
        if isinstance(rows, Exception):
            log.error("bucket %s could not be read: %s", bucket, rows)
            result.unread_buckets.append(bucket)
            keys = {key for key, _, _ in ledger.planned_rows(bucket)}
            taken.extend(_acked(ledger.records_at(bucket, keys)))
            continue
        present_by_bucket[bucket] = len(rows)
        settled = planned.intersection([row[2] for row in rows])
        if unacked is None:
            unacked = unacknowledged.result()
        settled -= unacked
        ok += len(settled)
        if len(settled) == len(planned) == len(rows):
            continue
        left = _open_part(ledger, bucket, rows, settled)
        for record, seen, same_key in left.records:
            if seen is Seen.OWN:  # its own row, never acknowledged
                _account(result, record, classify(record.outcome, seen, None), run_started_ns, taken)
            else:
                pending.setdefault(bucket, []).append((record, seen, same_key))
        if left.strays:
            unexpected[bucket] = left.strays
    if pending:
        sleep(spec.settle_ms / 1000)
        _reread(reader, spec, pending, present_by_bucket, result, run_started_ns, taken)
    for bucket, strays in sorted(unexpected.items()):
        for row in strays.values():
            result.counts[RecordClass.UNEXPECTED] += 1
            result.not_ok.append(_stray(bucket, row))
    result.present = sum(present_by_bucket.values())
    return ok


def _open_part(ledger: LedgerReader, bucket: int, rows: list[Stored], settled: set[str]) -> _Open:
    """Read the records at the bucket's unsettled keys and say what their first read saw."""
    left = _Open()
    planned = ledger.planned_rows(bucket)
    planned_keys = {key for key, _, _ in planned}
    left.strays = {row[0]: StoredRow(*row) for row in rows if row[0] not in planned_keys}
    open_keys = {key for key, _, digest in planned if digest not in settled}
    if not open_keys:
        return left
    at_key = {row[0]: StoredRow(*row) for row in rows if row[0] in open_keys}
    records = ledger.records_at(bucket, open_keys)
    same_key: dict[int, dict[int, LedgerRecord]] = {}
    for record in records:  # every record at an open key, settled ones too: they may hold it
        same_key.setdefault(record.key, {})[record.record_id] = record
    for record in records:
        if record.digest in settled:
            continue
        ids = same_key[record.key]
        left.records.append((record, _seen(record, at_key.get(record.key), ids), ids))
    return left


def _acked(records: Iterable[LedgerRecord]) -> Iterator[LedgerRecord]:
    return (record for record in records if record.outcome is DriverOutcome.ACKED)


def _add_ok(result: Verification, ok: int, acked: AckedTotals) -> None:
    """Count the records settled in bulk: every acknowledged record not classified otherwise."""
    if acked.count != ok:
        raise RuntimeError(
            f"verification found {ok} records ok but the ledger leaves {acked.count} acknowledged "
            "records unclassified; was the ledger written to while it was verified?"
        )
    result.counts[RecordClass.OK] += ok
    for writer, count in acked.by_writer.items():
        if count:
            result.by_writer[(writer, RecordClass.OK.value)] += count
    for second, count in acked.by_second.items():
        if count:
            result.by_second[(second, RecordClass.OK.value)] += count


def _reread(
    reader: PartitionReader,
    spec: Verify,
    pending: dict[int, list[tuple[LedgerRecord, Seen, dict[int, LedgerRecord]]]],
    present_by_bucket: dict[int, int],
    result: Verification,
    run_started_ns: int,
    taken: list[LedgerRecord],
) -> None:
    levels = reread_levels(spec.reread_consistency)
    for bucket, entries in sorted(pending.items()):
        rows: dict[int, StoredRow] | None = None
        for level in levels:
            try:
                rows = reader.read(bucket, level)
                result.reread_consistency = result.reread_consistency or level
                break
            except Exception as error:
                log.warning("re-read of bucket %s at %s failed: %s", bucket, level, error)
        if rows is None:
            result.unread_buckets.append(bucket)
            taken.extend(_acked(record for record, _, _ in entries))
            continue
        present_by_bucket[bucket] = max(present_by_bucket.get(bucket, 0), len(rows))
        for record, first, ids in entries:
            row = rows.get(record.key)
            seen = _seen(record, row, ids)
            found = _found(record, row, seen, ids)
            _account(result, record, classify(record.outcome, first, seen), run_started_ns, taken, found)


def _account(
    result: Verification,
    record: LedgerRecord,
    record_class: RecordClass,
    run_started_ns: int,
    taken: list[LedgerRecord],
    found: str = "",
) -> None:
    """Count one record classified one by one (never `ok`: those are counted in bulk)."""
    assert record_class is not RecordClass.OK
    if record.outcome is DriverOutcome.ACKED:
        taken.append(record)
    result.counts[record_class] += 1
    silent = is_silent(record_class, record.app_logged)
    result.by_writer[(record.writer, record_class.value)] += 1
    if record.completed_ns is not None:
        result.by_second[(second_of(record.completed_ns, run_started_ns), record_class.value)] += 1
    result.silent += silent
    result.by_batch[(record.writer, record.batch, record_class.value)] += 1
    error = record.error_class or "-"
    result.by_error[(error, record_class.value)] += 1
    if silent:
        result.silent_by_error[error] += 1
    result.not_ok.append(
        NotOk(
            record_id=record.record_id,
            bucket=record.bucket,
            key=record.key,
            record_class=record_class,
            silent=silent,
            outcome=None if record.outcome is None else record.outcome.value,
            attempts=record.attempts,
            error_class=record.error_class,
            error_message=record.error_message,
            writer=record.writer,
            batch=record.batch,
            app_logged=record.app_logged,
            found=found,
            faults=_faults_during(result.windows, record),
        )
    )


def _stray(bucket: int, row: StoredRow) -> NotOk:
    return NotOk(
        record_id=row.record_id,
        bucket=bucket,
        key=row.key,
        record_class=RecordClass.UNEXPECTED,
        silent=False,
        outcome=None,
        attempts=0,
        error_class=None,
        error_message=None,
        writer=None,
        batch=None,
        app_logged=None,
        found=f"row of record {row.record_id} where no record was meant to be",
    )


def _point_to_misplaced(result: Verification) -> None:
    """A record missing at its key whose row turned up elsewhere says where (wrong partition)."""
    strays = {n.record_id: n for n in result.not_ok if n.record_class is RecordClass.UNEXPECTED}
    if not strays:
        return
    for i, entry in enumerate(result.not_ok):
        stray = strays.get(entry.record_id)
        if stray is not None and entry.record_class is not RecordClass.UNEXPECTED:
            where = f"misplaced: its row is at bucket {stray.bucket}, key {stray.key}"
            result.not_ok[i] = dataclasses.replace(entry, found=where)


def _faults_during(windows: Sequence[FaultWindow], record: LedgerRecord) -> tuple[str, ...]:
    """Injectors whose window overlaps the time the record was in the driver's hands."""
    if not windows or record.submitted_ns is None:
        return ()
    start = record.submitted_ns
    end = record.completed_ns if record.completed_ns is not None else start
    return tuple(sorted({w.injector for w in windows if w.overlaps(start, end)}))


def _found(record: LedgerRecord, row: StoredRow | None, seen: Seen, by_id: dict[int, LedgerRecord]) -> str:
    """What the record's key holds; flags a later write lost to an earlier one (timestamps)."""
    if row is None:
        return "absent"
    if seen is Seen.REPEATED:
        return f"its own value, applied {row.applications} times"
    found = f"key holds record {row.record_id}"
    winner = by_id.get(row.record_id) if row.record_id is not None else None
    if (
        winner is not None
        and winner.completed_ns is not None
        and record.submitted_ns is not None
        and winner.completed_ns < record.submitted_ns
    ):
        found += ", acknowledged before this one was sent: last-write-wins kept the older write"
    return found


def _server_message(error: Exception) -> str:
    """The server's own words from a driver error ('table t does not exist'), else the error."""
    text = str(error)
    marker = 'message="'
    if marker in text:
        return text.split(marker, 1)[1].rstrip('"')
    return text
