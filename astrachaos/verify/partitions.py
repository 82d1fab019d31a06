"""Read a run back and classify every record: partition scans, a settle window, a strong re-read.

Partitions are read READ_AHEAD at a time, paged by the driver's callbacks (no thread per read), and
each is joined, as soon as it is complete, with what the ledger planned in it: a partition its
writers' prints match (`workload.prints`) holds exactly the planned rows, checked in bulk; any other
is digested row by row. Acknowledged records found as written are settled in bulk, the rest one by
one, in bucket order once every partition was read. Memory stays bounded by a few partitions plus
the records that are not `ok`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from xxhash import xxh3_64_hexdigest

from astrachaos.driver.table import RunTable
from astrachaos.driver.wire import WirePage, wire_rows_handler
from astrachaos.errors import EnvironmentProblem
from astrachaos.events import DriverOutcome, FaultWindow, PartitionPrint
from astrachaos.interpreter import gil_switch_interval, hot_phase
from astrachaos.ledger.reader import AckedTotals, LedgerReader, LedgerRecord, PlannedDigests, second_of
from astrachaos.ledger.writer import Ledger
from astrachaos.scenario import Verify
from astrachaos.verify.classify import RecordClass, Seen, classify, is_silent
from astrachaos.workload.plan import Digest, applied_digest, digest_of
from astrachaos.workload.prints import rows_match, wire_match

log = logging.getLogger(__name__)
_READ_ATTEMPTS = 3
READ_AHEAD = 4  # partitions in flight while one is joined
# The GIL's switch interval while verifying: the driver's I/O thread gets the GIL within 1 ms of
# a reply arriving, though the main thread is digesting a page (CPython's default: 5 ms). A/B on a
# 60,000-row run, medians of 7 interleaved verifications: 0.256 and 0.234 s at 1 ms, 0.279 and
# 0.276 s at 5 ms, against a raw scan's 0.194 and 0.196 s.
VERIFY_SWITCH_INTERVAL_S = 0.001
PARKED_ROWS = 200_000  # rows read and kept until the acknowledged totals are counted (~40 MB)
Stored = tuple[int, "int | None", str, int]  # key, record_id, digest, applications: a row as read
Row = tuple[Any, ...]  # (key, record_id, payload, applied): a row as the driver gives it


@dataclass(frozen=True)
class WireRows:
    """A partition's pages as the node sent them (`driver.wire`)."""

    pages: list[WirePage]

    def __len__(self) -> int:
        return sum(page.rows for page in self.pages)

    @property
    def cells(self) -> bytes:
        """Every row's cells, page after page."""
        return self.pages[0].cells if len(self.pages) == 1 else b"".join(page.cells for page in self.pages)

    def decoded(self) -> list[Row]:
        """The rows, decoded as the driver's default handler would."""
        return [row for page in self.pages for row in page.decoded()]


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
                stored = self.stored(self._session.execute(bound, execution_profile=self._profile))
                with self._count_lock:
                    self.rows_read += len(stored)
                return stored
            except Exception as error:  # read timeouts, unavailable replicas: retry, then give up
                if attempt == _READ_ATTEMPTS:
                    raise
                log.warning("read of bucket %s failed (%s), retrying", bucket, error)
                time.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    def stored(self, rows: Iterable[Row]) -> list[Stored]:
        """`Stored` of rows as the driver gives them: each digested."""
        return _stored_rows(rows, self.digest)

    def read(self, bucket: int, consistency: str) -> dict[int, StoredRow]:
        """Every row of partition (run_id, bucket), by clustering key; raises after retries."""
        return {row[0]: StoredRow(*row) for row in self.scan(bucket, consistency)}

    def scan_many(
        self,
        buckets: Iterable[int],
        consistency: str,
        ahead: int = READ_AHEAD,
        as_sent: Callable[[int], bool] = lambda bucket: False,
    ) -> Iterator[tuple[int, list[Row] | WireRows | Exception]]:
        """Each bucket's rows as read (or the error of its last attempt), in the order partitions complete.

        `ahead` partitions are read at once. The driver's callbacks only queue each page and ask
        for the next one; pages are gathered here, on the caller's thread, while the others read.
        A bucket `as_sent` says yes to, asked as its read starts, comes as the bytes the node sent.
        """
        from cassandra import ConsistencyLevel

        level = ConsistencyLevel.name_to_value[consistency]
        pages: queue.SimpleQueue[tuple[int, Any, bool]] = queue.SimpleQueue()
        session = self._session
        decoding = session.client_protocol_handler

        def start(bucket: int) -> None:
            try:
                bound = self._prepared.bind((self._run_id, bucket))
                bound.fetch_size = self._page_size
                bound.consistency_level = level
                if as_sent(bucket):  # the future keeps the handler it starts with, for every page
                    session.client_protocol_handler = wire_rows_handler()
                try:
                    future = session.execute_async(bound, execution_profile=self._profile)
                finally:
                    session.client_protocol_handler = decoding
            except Exception as error:  # a session shut down under us: an unread partition, not a crash
                on_error(error, bucket)
                return
            future.add_callbacks(on_page, on_error, callback_args=(bucket, future), errback_args=(bucket,))

        def on_page(rows: list[Any], bucket: int, future: Any) -> None:  # on the driver's I/O thread
            more = future.has_more_pages
            pages.put((bucket, rows, more))
            if more:
                future.start_fetching_next_page()

        def on_error(error: Exception, bucket: int) -> None:  # on the driver's I/O thread
            pages.put((bucket, error, False))

        upcoming = iter(buckets)
        read: dict[int, list[Any]] = {}
        attempts: dict[int, int] = {}

        def start_next(count: int = 1) -> None:
            for following in itertools.islice(upcoming, count):
                read[following], attempts[following] = [], 1
                start(following)

        start_next(ahead)
        while read:
            bucket, page, more = pages.get()
            if isinstance(page, Exception):
                if attempts[bucket] < _READ_ATTEMPTS:  # read timeouts, unavailable replicas: retry
                    log.warning("read of bucket %s failed (%s), retrying", bucket, page)
                    time.sleep(0.5 * attempts[bucket])
                    read[bucket], attempts[bucket] = [], attempts[bucket] + 1
                    start(bucket)
                    continue
                del read[bucket]
                start_next()
                yield bucket, page
                continue
            if isinstance(page, WirePage):
                read[bucket].append(page)
            else:
                read[bucket].extend(page)
            if more:
                continue
            start_next()  # the node reads the next partition while this one is joined
            done = read.pop(bucket)
            rows: list[Row] | WireRows = WireRows(done) if done and isinstance(done[0], WirePage) else done
            with self._count_lock:
                self.rows_read += len(rows)
            yield bucket, rows


def _stored_rows(rows: Iterable[Sequence[Any]], digest: Digest) -> list[Stored]:
    """`Stored` of rows read; the common row (a payload, written once) digested inline.

    The inline digest is `workload.plan.digest_of`, spelt out: a call per row costs a fifth of it.
    """
    if digest is not digest_of:
        return [_stored(row, digest) for row in rows]
    return [
        (key, rid, xxh3_64_hexdigest(f"{key}:{rid}:{payload}".encode()), 1)
        if payload is not None and (applied is None or len(applied) < 2)
        else _stored((key, rid, payload, applied), digest)
        for key, rid, payload, applied in rows
    ]


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


def _first_reads(
    reader: PartitionReader, buckets: Iterable[int], consistency: str, as_sent: Callable[[int], bool]
) -> Iterator[tuple[int, list[Row] | WireRows | list[Stored] | Exception, bool]]:
    """Every bucket's rows (or the error that left it unread), in any order; True if digested.

    A reader without `scan_many` (a stand-in table) is read one partition after another, digested.
    """
    scan_many = getattr(reader, "scan_many", None)
    if scan_many is not None:
        for bucket, rows in scan_many(buckets, consistency, as_sent=as_sent):
            yield bucket, rows, False
        return
    for bucket in buckets:
        try:
            yield bucket, reader.scan(bucket, consistency), True
        except Exception as error:
            yield bucket, error, True


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
    with (
        hot_phase(),
        gil_switch_interval(VERIFY_SWITCH_INTERVAL_S),
        ThreadPoolExecutor(2, thread_name_prefix="verify-totals") as pool,
        ledger.reading() as records,
        ledger.reading() as planned_reader,
        _PlannedAhead(planned_reader) as planned,
    ):
        totals = pool.submit(_acked_totals, ledger, run_started_ns)  # while the partitions are read
        app_logged = pool.submit(_app_logged_success, ledger)
        ok = _classify(reader, records, planned, buckets, spec, run_started_ns, sleep, result, taken, totals)
        acked, result.app_logged_success = totals.result(), app_logged.result()
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


@dataclass
class _Planned:
    """What the ledger planned in one bucket, as far as joining its partition needs it."""

    count: int
    prints: tuple[PartitionPrint, ...]  # per writer, in writer order; () when none was left
    digests: PlannedDigests | None  # read ahead only for a bucket without prints, else on demand

    def digests_from(self, ledger: LedgerReader, bucket: int) -> PlannedDigests:
        if self.digests is None:
            self.digests = ledger.planned_digests(bucket)
        return self.digests


def _planned_in(ledger: LedgerReader, bucket: int) -> _Planned:
    prints = ledger.planned_prints(bucket)
    if prints:
        return _Planned(ledger.planned_count(bucket), prints, None)
    digests = ledger.planned_digests(bucket)
    return _Planned(digests.count, (), digests)


class _PlannedAhead:
    """What each bucket planned (`_Planned`), read on a thread (and connection) of its own.

    A bucket's is asked for when its partition read starts, and taken when it is joined: the
    main thread gathers rows meanwhile instead of waiting for SQLite.
    """

    def __init__(self, reader: LedgerReader) -> None:
        self._reader = reader
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="verify-planned")
        self._asked: dict[int, Future[_Planned]] = {}

    def __enter__(self) -> _PlannedAhead:
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.shutdown(cancel_futures=True)

    def ask(self, bucket: int) -> None:
        if bucket not in self._asked:
            self._asked[bucket] = self._pool.submit(_planned_in, self._reader, bucket)

    def take(self, bucket: int) -> _Planned:
        self.ask(bucket)
        return self._asked.pop(bucket).result()


def _acked_totals(ledger: Ledger, run_started_ns: int) -> AckedTotals:
    with ledger.reading() as records:
        return records.acked_totals(run_started_ns)


def _app_logged_success(ledger: Ledger) -> int:
    with ledger.reading() as records:
        return records.app_logged_success()


def _classify(
    reader: PartitionReader,
    ledger: LedgerReader,
    planned_ahead: _PlannedAhead,
    buckets: Iterable[int],
    spec: Verify,
    run_started_ns: int,
    sleep: Callable[[float], None],
    result: Verification,
    taken: list[LedgerRecord],
    totals: Future[AckedTotals],
) -> int:
    """Classify the records that are not `ok` into `result`; return how many are.

    Partitions are joined in the order their reads complete (up to PARKED_ROWS rows wait for the
    acknowledged totals, counted meanwhile); what is left open is classified in bucket order
    afterwards, so that the verdict does not depend on the order of the reads.
    """
    pending: dict[int, list[tuple[LedgerRecord, Seen, dict[int, LedgerRecord]]]] = {}
    present_by_bucket: dict[int, int] = {}
    unexpected: dict[int, dict[int, StoredRow]] = {}
    opened: dict[int, _Open] = {}
    parked: list[tuple[int, _Planned, list[Stored] | None]] = []
    parked_rows = 0
    unread: list[int] = []
    ok = 0
    as_sent = _as_sent(ledger, run_started_ns)
    reads = _first_reads(reader, _buckets(ledger, buckets, planned_ahead), spec.read_consistency, as_sent)
    for bucket, rows, digested in reads:
        planned = planned_ahead.take(bucket)
        result.records += planned.count
        if isinstance(rows, Exception):
            log.error("bucket %s could not be read: %s", bucket, rows)
            unread.append(bucket)
            keys = {key for key, _, _ in ledger.planned_rows(bucket)}
            taken.extend(_acked(ledger.records_at(bucket, keys)))
            continue
        present_by_bucket[bucket] = len(rows)
        stored: list[Stored] | None = None  # None: exactly the rows planned, nothing to keep
        if isinstance(rows, WireRows):
            if len(rows) != planned.count or not wire_match(len(rows), rows.cells, planned.prints):
                stored = reader.stored(rows.decoded())
        elif digested:
            stored = rows  # a stand-in table's, digested as it read them
        elif len(rows) != planned.count or not rows_match(rows, planned.prints):
            stored = reader.stored(rows)
        parked.append((bucket, planned, stored))
        parked_rows += 0 if stored is None else len(stored)
        if totals.done() or parked_rows > PARKED_ROWS:
            ok += _join(ledger, parked, totals.result(), opened)
            parked_rows = 0
    ok += _join(ledger, parked, totals.result(), opened)
    result.unread_buckets.extend(sorted(unread))
    for bucket, left in sorted(opened.items()):
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


def _as_sent(ledger: LedgerReader, run_started_ns: int) -> Callable[[int], bool]:
    """Whether to read a bucket as the bytes the node sends.

    Yes for a bucket whose every writer left a print of those bytes and whose every record was
    acknowledged (as the totals the ledger's writer kept say; without them, no bucket): it most
    likely holds exactly its planned rows, matched without decoding one. A bucket whose bytes do
    not match is decoded afterwards in pure Python, slower than the driver's own decoding; a bucket
    with records not acknowledged rarely matches, so the driver decodes it from the start.
    """
    printed = ledger.wire_printed_buckets()
    acked = ledger.kept_acked_totals(run_started_ns) if printed else None
    if acked is None:
        return lambda bucket: False
    return lambda bucket: bucket in printed and acked.by_bucket[bucket] >= printed[bucket]


def _buckets(ledger: LedgerReader, buckets: Iterable[int], planned: _PlannedAhead) -> Iterator[int]:
    """The run's buckets, then any other the ledger planned in (asked once those are read).

    The planned digests of each are asked for as its read starts.
    """
    run = sorted(buckets)
    for bucket in itertools.chain(run, _elsewhere(ledger, run)):
        planned.ask(bucket)
        yield bucket


def _elsewhere(ledger: LedgerReader, buckets: list[int]) -> Iterator[int]:
    yield from sorted(set(ledger.buckets()).difference(buckets))


def _join(
    ledger: LedgerReader,
    parked: list[tuple[int, _Planned, list[Stored] | None]],
    acked: AckedTotals,
    opened: dict[int, _Open],
) -> int:
    """Settle the parked partitions in bulk (emptying `parked`); return how many records are `ok`.

    A partition its prints matched (no rows kept) or holding exactly the digests planned, in the
    same (key) order, is settled at once when all its records were acknowledged; any other is a
    set intersection. What a partition leaves unsettled goes to `opened`.
    """
    ok = 0
    for bucket, planned, rows in parked:
        all_acked = acked.by_bucket[bucket] >= planned.count
        if rows is None and all_acked:  # the common case: every record ok
            ok += planned.count
            continue
        if rows is None:  # as planned, but not all acknowledged: its rows are the planned ones
            rows = [(key, rid, digest, 1) for key, rid, digest in ledger.planned_rows(bucket)]
        digests = [row[2] for row in rows]
        known = planned.digests_from(ledger, bucket)
        as_planned = len(rows) == planned.count and ",".join(digests) == known.joined
        if as_planned and all_acked:
            ok += planned.count
            continue
        settled = known.as_set().intersection(digests)
        if not all_acked:  # some were never acknowledged
            settled -= ledger.unacknowledged_in(bucket)
        ok += len(settled)
        if not len(settled) == planned.count == len(rows):
            opened[bucket] = _open_part(ledger, bucket, rows, settled)
    parked.clear()
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
