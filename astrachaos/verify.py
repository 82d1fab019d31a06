"""Read a run back and classify every record: partition scans, a settle window, a strong re-read.

Memory stays bounded by one partition plus the records that are not `ok`: the ledger is read in
(bucket, key) order and joined with one partition at a time.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from astrachaos.classify import RecordClass, Seen, classify, is_silent
from astrachaos.events import DriverOutcome
from astrachaos.ledger import LedgerRecord
from astrachaos.scenario import Verify
from astrachaos.table import RunTable
from astrachaos.workload import digest_of

log = logging.getLogger(__name__)
_READ_ATTEMPTS = 3
Window = tuple[str, int, "int | None"]  # injector, start_ns, end_ns (None: still open)


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A row of the run as read from the table."""

    key: int
    record_id: int | None
    digest: str


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
    windows: list[Window] = field(default_factory=list)
    rows_read: int = 0
    seconds: float = 0.0


class PartitionReader:
    """Reads whole partitions of the run table at a given consistency, paged, with retries."""

    def __init__(self, session: Any, table: RunTable, run_id: str, page_size: int) -> None:
        self._session = session
        self._prepared = session.prepare(table.partition_cql())
        self._run_id = run_id
        self._page_size = page_size
        self.rows_read = 0

    def read(self, bucket: int, consistency: str) -> dict[int, StoredRow]:
        """Every row of partition (run_id, bucket), by clustering key; raises after retries."""
        from cassandra import ConsistencyLevel

        level = ConsistencyLevel.name_to_value[consistency]
        for attempt in range(1, _READ_ATTEMPTS + 1):
            try:
                bound = self._prepared.bind((self._run_id, bucket))
                bound.fetch_size = self._page_size
                bound.consistency_level = level
                rows = {
                    row[1]: StoredRow(row[1], row[2], digest_of(row[3]))
                    for row in self._session.execute(bound)
                }
                self.rows_read += len(rows)
                return rows
            except Exception as error:  # read timeouts, unavailable replicas: retry, then give up
                if attempt == _READ_ATTEMPTS:
                    raise
                log.warning("read of bucket %s failed (%s), retrying", bucket, error)
                time.sleep(0.5 * attempt)
        raise AssertionError("unreachable")


def _seen(record: LedgerRecord, row: StoredRow | None, same_key_ids: dict[int, LedgerRecord]) -> Seen:
    if row is None:
        return Seen.ABSENT
    if row.record_id == record.record_id:
        return Seen.OWN if row.digest == record.digest else Seen.CORRUPT
    return Seen.OTHER if row.record_id in same_key_ids else Seen.CORRUPT


def _by_bucket(records: Iterable[LedgerRecord]) -> Iterator[tuple[int, list[LedgerRecord]]]:
    for bucket, group in itertools.groupby(records, key=lambda r: r.bucket):
        yield bucket, list(group)


def verify(
    reader: PartitionReader,
    records: Iterable[LedgerRecord],
    buckets: Iterable[int],
    spec: Verify,
    run_started_ns: int,
    sleep: Callable[[float], None] = time.sleep,
    windows: Sequence[Window] = (),
) -> Verification:
    """Classify every ledger record against the table; list every record that is not `ok`.

    `windows` are the fault windows of the run, (injector, start_ns, end_ns or None); each
    record that is not ok is tagged with those active while it was written.
    """
    began = time.monotonic()
    result = Verification()
    result.windows = list(windows)
    pending: dict[int, list[tuple[LedgerRecord, Seen, dict[int, LedgerRecord]]]] = {}
    present_by_bucket: dict[int, int] = {}
    unexpected: dict[int, dict[int, StoredRow]] = {}
    ledger_buckets: set[int] = set()
    for bucket, group in _by_bucket(records):
        ledger_buckets.add(bucket)
        try:
            rows = reader.read(bucket, spec.read_consistency)
        except Exception as error:
            log.error("bucket %s could not be read: %s", bucket, error)
            result.unread_buckets.append(bucket)
            result.records += len(group)
            continue
        present_by_bucket[bucket] = len(rows)
        ids_at_key: dict[int, dict[int, LedgerRecord]] = {}
        for record in group:
            ids_at_key.setdefault(record.key, {})[record.record_id] = record
        for record in group:
            seen = _seen(record, rows.get(record.key), ids_at_key[record.key])
            if seen is Seen.OWN:
                _account(result, record, classify(record.outcome, seen, None), run_started_ns)
            else:
                pending.setdefault(bucket, []).append((record, seen, ids_at_key[record.key]))
        strays = {k: row for k, row in rows.items() if k not in ids_at_key}
        if strays:
            unexpected[bucket] = strays
    for bucket in buckets:  # partitions the run may have written without a record meant there
        if bucket in ledger_buckets:
            continue
        try:
            rows = reader.read(bucket, spec.read_consistency)
        except Exception as error:
            log.error("bucket %s could not be read: %s", bucket, error)
            result.unread_buckets.append(bucket)
            continue
        present_by_bucket[bucket] = len(rows)
        if rows:
            unexpected[bucket] = rows
    if pending:
        sleep(spec.settle_ms / 1000)
        _reread(reader, spec, pending, present_by_bucket, result, run_started_ns)
    for bucket, strays in sorted(unexpected.items()):
        for row in strays.values():
            result.counts[RecordClass.UNEXPECTED] += 1
            result.not_ok.append(_stray(bucket, row))
    _point_to_misplaced(result)
    result.present = sum(present_by_bucket.values())
    result.rows_read = reader.rows_read
    result.seconds = time.monotonic() - began
    return result


def _reread(
    reader: PartitionReader,
    spec: Verify,
    pending: dict[int, list[tuple[LedgerRecord, Seen, dict[int, LedgerRecord]]]],
    present_by_bucket: dict[int, int],
    result: Verification,
    run_started_ns: int,
) -> None:
    levels = [spec.reread_consistency] + (["QUORUM"] if spec.reread_consistency == "ALL" else [])
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
            result.records += len(entries)
            continue
        present_by_bucket[bucket] = max(present_by_bucket.get(bucket, 0), len(rows))
        for record, first, ids in entries:
            row = rows.get(record.key)
            record_class = classify(record.outcome, first, _seen(record, row, ids))
            found = "absent" if row is None else _holder(record, row, ids)
            _account(result, record, record_class, run_started_ns, found)


def _account(
    result: Verification,
    record: LedgerRecord,
    record_class: RecordClass,
    run_started_ns: int,
    found: str = "",
) -> None:
    result.records += 1
    result.counts[record_class] += 1
    silent = is_silent(record_class, record.app_logged)
    if record.app_logged:
        result.app_logged_success += 1
    if record.outcome is DriverOutcome.ACKED:
        result.acknowledged += 1
    result.by_writer[(record.writer, record_class.value)] += 1
    if record.completed_ns is not None:
        second = max(0, (record.completed_ns - run_started_ns) // 1_000_000_000)
        result.by_second[(second, record_class.value)] += 1
    if record_class is RecordClass.OK:
        return
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


def _faults_during(windows: Sequence[Window], record: LedgerRecord) -> tuple[str, ...]:
    """Injectors whose window overlaps the time the record was in the driver's hands."""
    if not windows or record.submitted_ns is None:
        return ()
    start = record.submitted_ns
    end = record.completed_ns if record.completed_ns is not None else start
    return tuple(
        sorted(
            {name for name, w_start, w_end in windows if w_start <= end and (w_end is None or w_end >= start)}
        )
    )


def _holder(record: LedgerRecord, row: StoredRow, by_id: dict[int, LedgerRecord]) -> str:
    """Who holds the record's key; flags a later write lost to an earlier one (timestamps)."""
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
