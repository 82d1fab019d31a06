"""The acknowledged totals verification needs, counted by the ledger's writer as it commits.

Verification counts the records acknowledged by bucket, writer and second of the run. Counted from
the ledger's tables by SQL, that costs about a second of CPU per 700,000 records at the start of
verification, on the cores the reads need. The writer thread already holds every planned and
completed row as it commits them, so it counts them there, in the same transaction as the rows:
a killed run's totals match the rows it committed.

The count is exact only when every record has at most one completion, its planned row committed
first, and the run's start (`started_ns`) known before the first completion. A run in which any of
that fails (a retried record with two completions, a ledger reopened for writing) stops counting
and says so; verification then counts by SQL, as it does for a ledger written before this existed.
The meta row `acked_totals` holds "<started_ns> <completion rows counted>", or "not kept".

Likewise the records the application last logged as a success: while no record is logged twice
(a byte per record id says which were), that is the sum of the app-log rows' `success`. The meta
row `app_logged` holds "<app-log rows counted> <successes>", or "not kept".
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from astrachaos.ledger.reader import LedgerRecord

TOTALS_SCHEMA = """
CREATE TABLE IF NOT EXISTS acked_totals (
    bucket INTEGER NOT NULL, writer INTEGER NOT NULL, second INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (bucket, writer, second)) WITHOUT ROWID;
"""
NOT_KEPT = "not kept"
_ADD = """INSERT INTO {target} (bucket, writer, second, count) {source}
ON CONFLICT (bucket, writer, second) DO UPDATE SET count = count + excluded.count"""
_STATE = "INSERT OR REPLACE INTO meta (name, value) VALUES ('acked_totals', ?)"
_LOGGED = "INSERT OR REPLACE INTO meta (name, value) VALUES ('app_logged', ?)"
_MAX_LOGGED_ID = 1 << 24  # a byte per record id: 16 MB at most, else the count is left to SQL


@dataclass
class AckedTotals:
    """The acknowledged records counted by writer, second of the run and bucket, without listing them."""

    count: int = 0
    by_writer: Counter[int] = field(default_factory=Counter)
    by_second: Counter[int] = field(default_factory=Counter)
    by_bucket: Counter[int] = field(default_factory=Counter)

    def add(self, bucket: int, writer: int, second: int, count: int) -> None:
        """Count `count` acknowledged records of one bucket, writer and second."""
        self.count += count
        self.by_writer[writer] += count
        self.by_second[second] += count
        self.by_bucket[bucket] += count

    def remove(self, record: LedgerRecord, run_started_ns: int) -> None:
        """Take out one acknowledged record (one that turned out not to be `ok`)."""
        assert record.completed_ns is not None, "an acknowledged record has a completion"
        self.add(record.bucket, record.writer, second_of(record.completed_ns, run_started_ns), -1)


def second_of(completed_ns: int, run_started_ns: int) -> int:
    """The second of the run a completion fell in (0 for one before the recorded start)."""
    return max(0, (completed_ns - run_started_ns) // 1_000_000_000)


class TotalsKeeper:
    """Counts acknowledged completions as the ledger's writer thread commits them (that thread only)."""

    def __init__(self) -> None:
        self.origin_ns: int | None = None  # the run's started_ns, set before the first completion
        self._where: dict[int, tuple[int, int]] = {}  # planned, not yet completed: (bucket, writer)
        self._fresh: Counter[tuple[int, int, int]] = Counter()
        self._counted = 0  # completion rows counted
        self._kept = True
        self._saved: str | None = None
        self._logged = bytearray()  # 1 at each record id app-logged so far
        self._logged_rows = 0
        self._logged_successes = 0
        self._logged_kept = True
        self._logged_saved: str | None = None

    def start_at(self, origin_ns: int) -> None:
        """The run's start; a change after completions were counted stops the count."""
        if self._counted and origin_ns != self.origin_ns:
            self._give_up()
        self.origin_ns = origin_ns

    def see_planned(self, rows: Sequence[Sequence[Any]]) -> None:
        """Planned rows as committed: (record_id, writer, batch, bucket, key, digest, planned_ns)."""
        if self._kept:
            self._where.update({row[0]: (row[3], row[1]) for row in rows})

    def see_completed(self, rows: Sequence[Sequence[Any]]) -> None:
        """Completion rows as committed: (record_id, outcome, attempts, submitted_ns, completed_ns, ...)."""
        if not self._kept or not rows:
            return
        origin = self.origin_ns
        if origin is None:
            return self._give_up()
        where, fresh = self._where.pop, self._fresh
        for row in rows:
            at = where(row[0], None)
            if at is None:  # a second completion, or one without its planned row: SQL decides
                return self._give_up()
            if row[1] == "acked":  # second_of, inlined: this runs once per record written
                fresh[(at[0], at[1], max(0, (row[4] - origin) // 1_000_000_000))] += 1
        self._counted += len(rows)

    def see_app_logged(self, rows: Sequence[Sequence[Any]]) -> None:
        """App-log rows as committed: (record_id, success, at_ns)."""
        if not self._logged_kept or not rows:
            return
        logged = self._logged
        for row in rows:
            rid = row[0]
            if not 0 <= rid < _MAX_LOGGED_ID:
                return self._give_up_logged()
            if rid >= len(logged):
                logged.extend(bytes(max(rid + 1, 2 * len(logged)) - len(logged)))
            if logged[rid]:  # logged twice: its last entry decides, which SQL knows
                return self._give_up_logged()
            logged[rid] = 1
            self._logged_successes += row[1]
        self._logged_rows += len(rows)

    def save(self, conn: sqlite3.Connection) -> None:
        """Write what was counted since the last save, inside the writer's open transaction."""
        if self._fresh:
            rows = [(*key, count) for key, count in self._fresh.items()]
            conn.executemany(_ADD.format(target="acked_totals", source="VALUES (?, ?, ?, ?)"), rows)
            self._fresh.clear()
        state = f"{self.origin_ns} {self._counted}" if self._kept else NOT_KEPT
        if (self._counted or not self._kept) and state != self._saved:
            conn.execute(_STATE, (state,))
            self._saved = state
        logged = f"{self._logged_rows} {self._logged_successes}" if self._logged_kept else NOT_KEPT
        if (self._logged_rows or not self._logged_kept) and logged != self._logged_saved:
            conn.execute(_LOGGED, (logged,))
            self._logged_saved = logged

    def _give_up(self) -> None:
        self._kept = False
        self._where.clear()
        self._fresh.clear()

    def _give_up_logged(self) -> None:
        self._logged_kept = False
        self._logged = bytearray()


def kept_app_logged_success(conn: sqlite3.Connection) -> int | None:
    """The records last app-logged as a success as the writer counted them, if that holds; else None."""
    kept = _meta_pair(conn, "main", "app_logged")
    if kept is None:
        return None
    rows, successes = kept
    (present,) = conn.execute("SELECT COUNT(*) FROM app_logs").fetchone()
    return successes if present == rows else None


def kept_totals(conn: sqlite3.Connection, run_started_ns: int) -> AckedTotals | None:
    """The totals the writer kept, if they hold for this start and every completion; else None."""
    state = _state(conn, "main")
    if state is None or state[0] != run_started_ns or state[1] != _completions(conn, "main"):
        return None
    totals = AckedTotals()
    for row in conn.execute("SELECT bucket, writer, second, count FROM acked_totals"):
        totals.add(*row)
    return totals


def absorb_totals(conn: sqlite3.Connection) -> None:
    """Add an attached `segment`'s kept totals to the ledger's, inside the absorbing transaction,
    before the segment's rows are added. The sum holds when both kept theirs from the same start
    (a side without completions holds anyway).
    """
    _absorb_app_logged(conn)
    main_completions = _completions(conn, "main")
    segment_completions = _completions(conn, "segment")
    if not main_completions and not segment_completions:
        return
    mine_held, mine = _held(conn, "main", main_completions)
    theirs_held, theirs = _held(conn, "segment", segment_completions)
    agree = None in (mine, theirs) or mine == theirs
    if mine_held and theirs_held and agree and _has_totals(conn, "main"):
        if segment_completions:
            source = "SELECT bucket, writer, second, count FROM segment.acked_totals WHERE true"
            conn.execute(_ADD.format(target="main.acked_totals", source=source))
        origin = mine if mine is not None else theirs
        conn.execute(_STATE, (f"{origin} {main_completions + segment_completions}",))
    else:
        conn.execute(_STATE, (NOT_KEPT,))


def _absorb_app_logged(conn: sqlite3.Connection) -> None:
    """Add a segment's app-log count to the ledger's (before its rows are added).

    A record is planned in one segment only (record_id is the planned table's key), and logged by
    the process that wrote it: two counts that each saw every record once add up.
    """
    counts = []
    for schema in ("main", "segment"):
        (rows,) = conn.execute(f"SELECT COUNT(*) FROM {schema}.app_logs").fetchone()
        kept_rows, successes = _meta_pair(conn, schema, "app_logged") or (-1, 0)
        counts.append((rows, kept_rows, successes))
    if not counts[0][0] and not counts[1][0]:
        return
    if all(rows == kept_rows or not rows for rows, kept_rows, _ in counts):
        conn.execute(_LOGGED, (f"{counts[0][0] + counts[1][0]} {counts[0][2] + counts[1][2]}",))
    else:
        conn.execute(_LOGGED, (NOT_KEPT,))


def _held(conn: sqlite3.Connection, schema: str, completions: int) -> tuple[bool, int | None]:
    """Whether a ledger's kept totals hold for its `completions` rows, and from which start.

    A ledger without completions holds (nothing to count) from no start in particular.
    """
    if not completions:
        return True, None
    if not _has_totals(conn, schema):
        return False, None
    state = _state(conn, schema)
    if state is None or state[1] != completions:
        return False, None
    return True, state[0]


def _state(conn: sqlite3.Connection, schema: str) -> tuple[int, int] | None:
    """(started_ns, completion rows counted) of a ledger's kept totals, or None."""
    return _meta_pair(conn, schema, "acked_totals")


def _meta_pair(conn: sqlite3.Connection, schema: str, name: str) -> tuple[int, int] | None:
    """A meta value of two integers ("<a> <b>"), or None when absent or "not kept"."""
    row = conn.execute(f"SELECT value FROM {schema}.meta WHERE name = ?", (name,)).fetchone()
    try:
        first, second = map(int, row[0].split())
    except (TypeError, ValueError):
        return None
    return first, second


def _completions(conn: sqlite3.Connection, schema: str) -> int:
    (count,) = conn.execute(f"SELECT COUNT(*) FROM {schema}.completions").fetchone()
    return int(count)


def _has_totals(conn: sqlite3.Connection, schema: str) -> bool:
    query = f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = 'acked_totals'"
    return conn.execute(query).fetchone() is not None
