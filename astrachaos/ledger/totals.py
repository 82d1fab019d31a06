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

    def _give_up(self) -> None:
        self._kept = False
        self._where.clear()
        self._fresh.clear()


def kept_totals(conn: sqlite3.Connection, run_started_ns: int) -> AckedTotals | None:
    """The totals the writer kept, if they hold for this start and every completion; else None."""
    state = _state(conn, "main")
    if state is None or state[0] != run_started_ns or state[1] != _completions(conn, "main"):
        return None
    totals = AckedTotals()
    for row in conn.execute("SELECT bucket, writer, second, count FROM acked_totals"):
        totals.add(*row)
    return totals


def absorb_totals(conn: sqlite3.Connection, main_completions: int) -> None:
    """Add an attached `segment`'s kept totals to the ledger's, inside the absorbing transaction.

    `main_completions`: the ledger's completion rows before the segment's were added. The sum
    holds when both kept theirs from the same start (a side without completions holds anyway).
    """
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
    row = conn.execute(f"SELECT value FROM {schema}.meta WHERE name = 'acked_totals'").fetchone()
    try:
        origin, counted = row[0].split()
        return int(origin), int(counted)
    except (TypeError, ValueError):  # no row, or "not kept"
        return None


def _completions(conn: sqlite3.Connection, schema: str) -> int:
    (count,) = conn.execute(f"SELECT COUNT(*) FROM {schema}.completions").fetchone()
    return int(count)


def _has_totals(conn: sqlite3.Connection, schema: str) -> bool:
    query = f"SELECT 1 FROM {schema}.sqlite_master WHERE type = 'table' AND name = 'acked_totals'"
    return conn.execute(query).fetchone() is not None
