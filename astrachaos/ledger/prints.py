"""The partition prints each writer left in the ledger when it finished planning, by bucket.

A print (`workload.prints`) lets verification match a partition in bulk instead of digesting it
row by row. A writer leaves its prints once it has planned its last batch; a run killed before
that leaves none for it, and a ledger written before prints existed has no table for them:
verification then digests those partitions row by row, as it always did.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from astrachaos.events import PartitionPrint

PRINTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS planned_prints (
    bucket INTEGER NOT NULL, writer INTEGER NOT NULL, records INTEGER NOT NULL, columns TEXT NOT NULL,
    wire_bytes INTEGER NOT NULL, wire TEXT, PRIMARY KEY (bucket, writer)) WITHOUT ROWID;
"""


def save_prints(conn: sqlite3.Connection, writer: int, prints: Iterable[PartitionPrint]) -> None:
    """Keep a writer's prints, a row per bucket."""
    conn.executemany(
        "INSERT OR REPLACE INTO planned_prints VALUES (?, ?, ?, ?, ?, ?)",
        [(p.bucket, writer, p.records, p.columns, p.wire_bytes, p.wire) for p in prints],
    )


def absorb_prints(conn: sqlite3.Connection) -> None:
    """Copy the prints of the ledger segment attached as `segment` (if it has any)."""
    if conn.execute("SELECT 1 FROM segment.sqlite_master WHERE name = 'planned_prints'").fetchone():
        conn.execute("INSERT OR REPLACE INTO planned_prints SELECT * FROM segment.planned_prints")


def bucket_prints(conn: sqlite3.Connection, bucket: int) -> tuple[PartitionPrint, ...]:
    """The print of each writer that left one for the bucket, in writer order."""
    try:
        rows = conn.execute(
            "SELECT records, columns, wire_bytes, wire FROM planned_prints WHERE bucket = ? ORDER BY writer",
            (bucket,),
        ).fetchall()
    except sqlite3.OperationalError:  # a ledger from before prints: no such table
        return ()
    return tuple(PartitionPrint(bucket, *row) for row in rows)


def wire_printed_buckets(conn: sqlite3.Connection) -> dict[int, int]:
    """The buckets every writer of which left a print of the rows' bytes, with their records."""
    try:
        rows = conn.execute(
            "SELECT bucket, SUM(records) FROM planned_prints GROUP BY bucket HAVING COUNT(*) = COUNT(wire)"
        ).fetchall()
    except sqlite3.OperationalError:
        return {}
    return {int(bucket): int(records) for bucket, records in rows}
