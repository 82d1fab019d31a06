"""Reading a ledger: records one by one with their final word, and set-based reads for verification.

A record's final word: the driver's is an acknowledgement if any attempt was acknowledged (a later
retry of an applied write that is throttled or times out does not un-apply it), else the last
completion by completed_ns (ties: the one written last); the application's is its last app-log
entry.

Verification settles the bulk of a run with set-based reads (`planned_prints`, `acked_totals`; then
`planned_digests` for a partition its prints do not match, and
`unacknowledged_in` only for a partition some of whose records were never acknowledged): SQLite
does the joins and the counting, Python builds no object per record. Only the records that are not
`ok` are read one by one (`records_at`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from astrachaos.events import DriverOutcome, PartitionPrint
from astrachaos.ledger.prints import bucket_prints, wire_printed_buckets
from astrachaos.ledger.totals import AckedTotals, kept_app_logged_success, kept_totals, second_of

__all__ = ["AckedTotals", "LedgerCounts", "LedgerReader", "LedgerRecord", "PlannedDigests", "second_of"]

# The ledger's schema creates these indexes, so that they grow while the run writes (rows arrive
# roughly in record_id order: cheap appends) and verification never waits for them; a ledger
# written before they were part of the schema gets them when first read. Each covers its queries.
READ_INDEXES = """
CREATE INDEX IF NOT EXISTS planned_by_bucket ON planned (bucket, key, record_id, digest);
CREATE INDEX IF NOT EXISTS completions_by_record ON completions (record_id, outcome, completed_ns);
CREATE INDEX IF NOT EXISTS app_logs_by_record ON app_logs (record_id, at_ns, success);
"""

_LAST_COMPLETION = """(SELECT x.rowid FROM completions x WHERE x.record_id = p.record_id
    ORDER BY (x.outcome = 'acked') DESC, x.completed_ns DESC, x.rowid DESC LIMIT 1)"""
_LAST_APP_LOG = """(SELECT a.success FROM app_logs a WHERE a.record_id = p.record_id
    ORDER BY a.at_ns DESC, a.rowid DESC LIMIT 1)"""

_RECORD_COLUMNS = f"""
SELECT p.record_id, p.writer, p.batch, p.bucket, p.key, p.digest, p.planned_ns,
    c.outcome, (SELECT MAX(x.attempts) FROM completions x WHERE x.record_id = p.record_id),
    (SELECT MIN(x.submitted_ns) FROM completions x WHERE x.record_id = p.record_id),
    c.completed_ns, c.error_class, c.error_message, {_LAST_APP_LOG}
"""

# planned is read in record_id order, so every lookup walks its index forwards (cache-friendly);
# one external sort at the end gives the (bucket, key) order with bounded memory.
_RECORDS = f"""{_RECORD_COLUMNS}
FROM planned p NOT INDEXED LEFT JOIN completions c ON c.rowid = {_LAST_COMPLETION}
ORDER BY p.bucket, p.key, p.record_id
"""

_RECORDS_AT = f"""{_RECORD_COLUMNS}
FROM planned p INDEXED BY planned_by_bucket LEFT JOIN completions c ON c.rowid = {_LAST_COMPLETION}
WHERE p.bucket = ? AND p.key IN (SELECT value FROM json_each(?))
ORDER BY p.key, p.record_id
"""

_COUNTS = f"""
SELECT outcome, app_logged, COUNT(*) FROM (
    SELECT (SELECT c.outcome FROM completions c WHERE c.rowid = {_LAST_COMPLETION}) AS outcome,
        {_LAST_APP_LOG} AS app_logged
    FROM planned p)
GROUP BY outcome, app_logged
"""

# One row per (bucket, writer, second) over the acknowledged records; a record's second is that
# of its last acknowledged completion, as LedgerRecord.completed_ns gives it. The bucket tells
# verification which partitions hold a record never acknowledged (fewer acknowledged than planned)
# without probing the completions once per planned record.
_ACKED_TOTALS = """
SELECT p.bucket, p.writer, MAX(0, (a.completed_ns - ?) / 1000000000), COUNT(*)
FROM (SELECT record_id, MAX(completed_ns) AS completed_ns FROM completions
      WHERE outcome = 'acked' GROUP BY record_id) a
JOIN planned p ON p.record_id = a.record_id
GROUP BY 1, 2, 3
"""

_UNACKNOWLEDGED_IN = """
SELECT digest FROM planned p INDEXED BY planned_by_bucket WHERE bucket = ? AND NOT EXISTS
    (SELECT 1 FROM completions c WHERE c.record_id = p.record_id AND c.outcome = 'acked')
"""

# A record's last app-log entry decides (SQLite takes the bare column from the MAX row).
_APP_LOGGED_SUCCESS = """
SELECT COUNT(*) FROM (SELECT success, MAX(at_ns) FROM app_logs GROUP BY record_id) WHERE success = 1
"""

# In the covering index's (key, record_id) order, the order a partition's rows come back in.
# (An ORDER BY would make SQLite copy every row through a co-routine: twice the cost. Should the
# order ever differ, verification only loses its one-comparison shortcut, never a verdict.)
_PLANNED_IN = """
SELECT group_concat(digest, ','), COUNT(*) FROM planned INDEXED BY planned_by_bucket WHERE bucket = ?
"""

_PLANNED_COUNT = "SELECT COUNT(*) FROM planned INDEXED BY planned_by_bucket WHERE bucket = ?"

# Index seeks from one bucket to the next (a skip scan): DISTINCT would walk every planned record.
_BUCKETS = """
WITH RECURSIVE b(bucket) AS (
    SELECT MIN(bucket) FROM planned INDEXED BY planned_by_bucket
    UNION ALL
    SELECT (SELECT MIN(bucket) FROM planned INDEXED BY planned_by_bucket WHERE bucket > b.bucket)
    FROM b WHERE b.bucket IS NOT NULL)
SELECT bucket FROM b WHERE bucket IS NOT NULL
"""

_OUTCOMES = {outcome.value: outcome for outcome in DriverOutcome}


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One planned record with the final word of the driver and of the application."""

    record_id: int
    writer: int
    batch: int
    bucket: int
    key: int
    digest: str
    planned_ns: int
    outcome: DriverOutcome | None  # acked if any completion was, else the last; None: none (crash)
    attempts: int  # the most any completion reported; 0 without a completion
    submitted_ns: int | None  # the first submission of any attempt: with completed_ns, the time
    completed_ns: int | None  # the record was in the driver's hands (to match fault windows)
    error_class: str | None  # of the completion that gave `outcome`, like completed_ns
    error_message: str | None
    app_logged: bool | None  # the last app-log entry: success, failure, or never logged


@dataclass(frozen=True, slots=True)
class PlannedDigests:
    """The digests of the records planned in one bucket, comma-separated in (key, record_id) order."""

    joined: str
    count: int

    def as_set(self) -> set[str]:
        """The digests as a set."""
        return set(self.joined.split(",")) if self.joined else set()


@dataclass(frozen=True, slots=True)
class LedgerCounts:
    """How many planned records ended in each driver outcome and each app-log verdict."""

    planned: int
    acked: int
    failed: int
    indeterminate: int
    dropped: int
    no_outcome: int
    app_logged_success: int
    app_logged_failure: int
    app_not_logged: int


class LedgerReader:
    """Queries over one read connection; the ledger may be one a killed run left behind."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def records(self) -> Iterator[LedgerRecord]:
        """Every planned record with its final word, ordered by (bucket, key, record_id)."""
        for row in self._conn.execute(_RECORDS):
            yield _record_of(row)

    def records_at(self, bucket: int, keys: Iterable[int]) -> list[LedgerRecord]:
        """The records planned at some keys of one bucket, ordered by (key, record_id)."""
        rows = self._conn.execute(_RECORDS_AT, (bucket, json.dumps(sorted(set(keys)))))
        return [_record_of(row) for row in rows]

    def planned_digests(self, bucket: int) -> PlannedDigests:
        """The digests of the records planned in a bucket (see `workload.digest_of`).

        One string from SQLite: one statement step instead of one per record (each step hands the
        GIL over, and getting it back can take a switch interval).
        """
        joined, count = self._conn.execute(_PLANNED_IN, (bucket,)).fetchone()
        return PlannedDigests(joined or "", count)

    def planned_prints(self, bucket: int) -> tuple[PartitionPrint, ...]:
        """The print of each writer that planned in a bucket, in writer order (`ledger.prints`)."""
        return bucket_prints(self._conn, bucket)

    def wire_printed_buckets(self) -> dict[int, int]:
        """The buckets whose every writer left a print of the rows' bytes, with their records."""
        return wire_printed_buckets(self._conn)

    def planned_count(self, bucket: int) -> int:
        """How many records were planned in a bucket (counted on the covering index)."""
        (count,) = self._conn.execute(_PLANNED_COUNT, (bucket,)).fetchone()
        return int(count)

    def planned_rows(self, bucket: int) -> list[tuple[int, int, str]]:
        """(key, record_id, digest) of every record planned in a bucket."""
        return self._conn.execute(
            "SELECT key, record_id, digest FROM planned INDEXED BY planned_by_bucket WHERE bucket = ?",
            (bucket,),
        ).fetchall()

    def acked_totals(self, run_started_ns: int) -> AckedTotals:
        """How many records were acknowledged, by writer, by second of the run and by bucket.

        The totals the ledger's writer kept when they hold (`ledger.totals`), else counted here.
        """
        kept = kept_totals(self._conn, run_started_ns)
        return kept if kept is not None else self.counted_acked_totals(run_started_ns)

    def kept_acked_totals(self, run_started_ns: int) -> AckedTotals | None:
        """`acked_totals` if the ledger's writer kept them (a quick read), else None."""
        return kept_totals(self._conn, run_started_ns)

    def counted_acked_totals(self, run_started_ns: int) -> AckedTotals:
        """`acked_totals` counted from the completions, whatever the writer kept."""
        totals = AckedTotals()
        for bucket, writer, second, count in self._conn.execute(_ACKED_TOTALS, (run_started_ns,)):
            totals.add(bucket, writer, second, count)
        return totals

    def unacknowledged_in(self, bucket: int) -> set[str]:
        """Digests of the records planned in a bucket no attempt of which was acknowledged."""
        return {digest for (digest,) in self._conn.execute(_UNACKNOWLEDGED_IN, (bucket,))}

    def app_logged_success(self) -> int:
        """How many records the application last logged as a success (as the writer counted, if it could)."""
        kept = kept_app_logged_success(self._conn)
        return kept if kept is not None else self.counted_app_logged_success()

    def counted_app_logged_success(self) -> int:
        """`app_logged_success` counted from the app-log rows, whatever the writer kept."""
        (count,) = self._conn.execute(_APP_LOGGED_SUCCESS).fetchone()
        return int(count)

    def buckets(self) -> list[int]:
        """The distinct buckets of the planned records, ascending (one index seek per bucket)."""
        return [bucket for (bucket,) in self._conn.execute(_BUCKETS)]

    def counts(self) -> LedgerCounts:
        """How many records ended in each outcome and each app-log verdict."""
        outcomes: dict[str | None, int] = {}
        app: dict[int | None, int] = {}
        for outcome, app_logged, count in self._conn.execute(_COUNTS):
            outcomes[outcome] = outcomes.get(outcome, 0) + count
            app[app_logged] = app.get(app_logged, 0) + count
        return LedgerCounts(
            planned=sum(outcomes.values()),
            acked=outcomes.get(DriverOutcome.ACKED.value, 0),
            failed=outcomes.get(DriverOutcome.FAILED.value, 0),
            indeterminate=outcomes.get(DriverOutcome.INDETERMINATE.value, 0),
            dropped=outcomes.get(DriverOutcome.DROPPED.value, 0),
            no_outcome=outcomes.get(None, 0),
            app_logged_success=app.get(1, 0),
            app_logged_failure=app.get(0, 0),
            app_not_logged=app.get(None, 0),
        )


def _record_of(row: tuple[Any, ...]) -> LedgerRecord:
    rid, writer, batch, bucket, key, digest, planned_ns, outcome, attempts = row[:9]
    submitted_ns, completed_ns, error_class, error_message, app_logged = row[9:]
    return LedgerRecord(
        rid,
        writer,
        batch,
        bucket,
        key,
        digest,
        planned_ns,
        None if outcome is None else _OUTCOMES[outcome],
        attempts or 0,
        submitted_ns,
        completed_ns,
        error_class,
        error_message,
        None if app_logged is None else bool(app_logged),
    )
