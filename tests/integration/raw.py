"""Independent reads with the raw driver: what the table holds, without any astrachaos code."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cassandra import ConsistencyLevel, ReadTimeout, Unavailable
from cassandra.cluster import Cluster
from cassandra.query import SimpleStatement


@contextmanager
def raw_session(contact_points: list[str]) -> Iterator[Any]:
    """A bare driver session, built here and nowhere else."""
    cluster = Cluster(contact_points, protocol_version=5)
    try:
        yield cluster.connect()
    finally:
        cluster.shutdown()


def rows_of_run(session: Any, table: str, run_id: str, buckets: int) -> dict[tuple[int, int], Any]:
    """Every row of a run, by (bucket, key), read at ALL partition by partition."""
    rows: dict[tuple[int, int], Any] = {}
    for bucket in range(buckets):
        statement = SimpleStatement(
            f"SELECT bucket, key, record_id, writer, payload, applied FROM {table}"
            " WHERE run_id = %s AND bucket = %s",
            consistency_level=ConsistencyLevel.ALL,
            fetch_size=5000,
        )
        for attempt in range(5):
            try:
                for row in session.execute(statement, (run_id, bucket)):
                    rows[(row.bucket, row.key)] = row
                break
            except (ReadTimeout, Unavailable):
                # A replica that just restarted may not answer at ALL yet: wait, do not guess.
                if attempt == 4:
                    raise
                time.sleep(2.0)
    return rows
