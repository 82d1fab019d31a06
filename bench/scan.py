"""The verification baseline: a raw paged scan of a run's partitions, every row iterated."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from astrachaos.table import RunTable


@dataclass(frozen=True)
class RawScan:
    """One timed scan of every partition of a run."""

    run_id: str
    rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        """Rows read per second."""
        return self.rows / self.seconds


def raw_scan(
    session: Any, table: RunTable, run_id: str, buckets: int, page_size: int, consistency: str
) -> RawScan:
    """Read partitions (run_id, 0..buckets-1) with the engine's query, page size and level."""
    from cassandra import ConsistencyLevel

    prepared = session.prepare(table.partition_cql())  # prepared before timing, as the engine's
    level = ConsistencyLevel.name_to_value[consistency]
    rows = 0
    began = time.perf_counter()
    for bucket in range(buckets):
        bound = prepared.bind((run_id, bucket))
        bound.fetch_size = page_size
        bound.consistency_level = level
        for _ in session.execute(bound):
            rows += 1
    return RawScan(run_id, rows, time.perf_counter() - began)
