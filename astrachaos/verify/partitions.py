"""Classify every record of a run against what its table holds: first reads, a settle window, a
strong re-read.

Partitions are read several at a time (`verify.reads`), and each is joined, as soon as it is
complete, with what the ledger planned in it: a partition its writers' prints match
(`workload.prints`) holds exactly the planned rows, checked in bulk; any other is digested row by
row. Acknowledged records found as written are settled in bulk, the rest one by
one, in bucket order once every partition was read. Memory stays bounded by a few partitions plus
the records that are not `ok`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from astrachaos.events import DriverOutcome, FaultWindow, PartitionPrint
from astrachaos.interpreter import gil_switch_interval, hot_phase
from astrachaos.ledger.reader import AckedTotals, LedgerReader, LedgerRecord, PlannedDigests, second_of
from astrachaos.ledger.writer import Ledger
from astrachaos.scenario import Verify
from astrachaos.verify.classify import RecordClass, Seen, classify, is_silent
from astrachaos.verify.reads import PartitionReader, Row, Stored, StoredRow, WireRows
from astrachaos.workload.plan import applied_digest
from astrachaos.workload.prints import rows_match, wire_match

log = logging.getLogger(__name__)
# The GIL's switch interval while verifying: the driver's I/O thread gets the GIL within 1 ms of
# a reply arriving, though the main thread is digesting a page (CPython's default: 5 ms). A/B on a
# 60,000-row run whose rows were all digested, medians of 7 interleaved verifications: 0.256 and
# 0.234 s at 1 ms, 0.279 and 0.276 s at 5 ms, against a raw scan's 0.194 and 0.196 s. Where
# prints match (columns prints), the main thread hardly holds the GIL and the interval no longer
# matters (medians of 15 at e50d3c1: 310 ms at 1 ms, 308 ms at 5 ms); it does for digested runs.
VERIFY_SWITCH_INTERVAL_S = 0.001
PARKED_ROWS = 200_000  # rows read and kept until the acknowledged totals are counted (~40 MB)


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
        kept = records.kept_acked_totals(run_started_ns)  # a quick read, when the ledger's writer kept them
        totals = (
            _known(kept) if kept is not None else pool.submit(_counted_acked_totals, ledger, run_started_ns)
        )
        app_logged = pool.submit(_app_logged_success, ledger)  # while the partitions are read
        as_sent = _as_sent(records, kept)
        ok = _classify(
            reader, records, planned, buckets, spec, run_started_ns, sleep, result, taken, totals, as_sent
        )
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


def _counted_acked_totals(ledger: Ledger, run_started_ns: int) -> AckedTotals:
    with ledger.reading() as records:
        return records.counted_acked_totals(run_started_ns)


def _known(totals: AckedTotals) -> Future[AckedTotals]:
    known: Future[AckedTotals] = Future()
    known.set_result(totals)
    return known


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
    as_sent: Callable[[int], bool],
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


def _as_sent(ledger: LedgerReader, acked: AckedTotals | None) -> Callable[[int], bool]:
    """Whether to read a bucket as the bytes the node sends.

    Yes for a bucket whose every writer left a print of those bytes and whose every record was
    acknowledged (as the totals the ledger's writer kept say; without them, no bucket): it most
    likely holds exactly its planned rows, matched without decoding one. A bucket whose bytes do
    not match is decoded afterwards in pure Python, slower than the driver's own decoding; a bucket
    with records not acknowledged rarely matches, so the driver decodes it from the start.
    """
    printed = ledger.wire_printed_buckets() if acked is not None else {}
    if acked is None or not printed:
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
        if rows is None:  # as planned, but not all acknowledged: it holds the planned rows, each settled
            rows = [(key, rid, digest, 1) for key, rid, digest in ledger.planned_rows(bucket)]
            settled = {row[2] for row in rows}
        else:
            digests = [row[2] for row in rows]
            known = planned.digests_from(ledger, bucket)
            if all_acked and len(rows) == planned.count and ",".join(digests) == known.joined:
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
