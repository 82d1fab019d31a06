"""The verification baselines: raw paged scans of a run's partitions, every row iterated.

`raw_scan` is what a user writes by hand: one partition after another, the driver's default
rows. `raw_scan_like_engine` reads as the engine does (plain tuples, `read_ahead` partitions in
flight, each paged by the driver's callbacks), so the ratio against it shows the engine's own
cost alone: digesting every row, reading its ledger, joining.
"""

from __future__ import annotations

import itertools
import queue
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astrachaos.driver.table import RunTable


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
    read = _partition_reader(session, table, run_id, page_size, consistency, tuples=False)
    began = time.perf_counter()
    rows = sum(read(bucket) for bucket in range(buckets))
    return RawScan(run_id, rows, time.perf_counter() - began)


def raw_scan_like_engine(
    session: Any,
    table: RunTable,
    run_id: str,
    buckets: int,
    page_size: int,
    consistency: str,
    read_ahead: int,
) -> RawScan:
    """The same scan with tuple rows and `read_ahead` partitions read at once by callbacks."""
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT
    from cassandra.query import tuple_factory

    prepared = session.prepare(table.partition_cql())
    level = ConsistencyLevel.name_to_value[consistency]
    profile = session.execution_profile_clone_update(EXEC_PROFILE_DEFAULT, row_factory=tuple_factory)
    pages: queue.SimpleQueue[tuple[list[Any] | Exception, bool]] = queue.SimpleQueue()

    def start(bucket: int) -> None:
        bound = prepared.bind((run_id, bucket))
        bound.fetch_size = page_size
        bound.consistency_level = level
        future = session.execute_async(bound, execution_profile=profile)
        future.add_callbacks(on_page, lambda error: pages.put((error, False)), callback_args=(future,))

    def on_page(rows: list[Any], future: Any) -> None:
        more = future.has_more_pages
        pages.put((rows, more))
        if more:
            future.start_fetching_next_page()

    began = time.perf_counter()
    upcoming = iter(range(buckets))
    reading = 0
    for bucket in itertools.islice(upcoming, read_ahead):
        start(bucket)
        reading += 1
    rows = 0
    while reading:
        page, more = pages.get()
        if isinstance(page, Exception):
            raise page
        rows += sum(1 for _ in page)
        if not more:
            reading -= 1
            for following in itertools.islice(upcoming, 1):
                start(following)
                reading += 1
    return RawScan(run_id, rows, time.perf_counter() - began)


def _partition_reader(
    session: Any, table: RunTable, run_id: str, page_size: int, consistency: str, *, tuples: bool
) -> Any:
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT
    from cassandra.query import tuple_factory

    prepared = session.prepare(table.partition_cql())  # prepared before timing, as the engine's
    level = ConsistencyLevel.name_to_value[consistency]
    profile = (
        session.execution_profile_clone_update(EXEC_PROFILE_DEFAULT, row_factory=tuple_factory)
        if tuples
        else EXEC_PROFILE_DEFAULT
    )

    def read(bucket: int) -> int:
        bound = prepared.bind((run_id, bucket))
        bound.fetch_size = page_size
        bound.consistency_level = level
        return sum(1 for _ in session.execute(bound, execution_profile=profile))

    return read


def reverify(run_dir: Path) -> RawScan:
    """`astrachaos verify` of a saved run, timed as the run times it (its own Cluster, connected untimed).

    Verifying a run again after its writes, next to a raw scan, compares the two at the same
    state of the node: in the run, verification starts the moment the writes end, while the node
    still works them off (a raw scan at that moment is slower by as much).
    """
    from astrachaos.run.saved import open_run
    from astrachaos.verify.classify import RecordClass
    from astrachaos.verify.connection import verify_run_table
    from bench.writes import BenchFailure

    saved = open_run(run_dir)
    side, scenario = saved.primary, saved.scenario
    profile = saved.profile(side)
    with side.ledger() as ledger:
        verification = verify_run_table(
            profile, side.table(profile), saved.run_id, ledger, scenario, side.started_ns
        )
    ok = verification.counts[RecordClass.OK]
    if ok != verification.records or verification.not_ok:
        raise BenchFailure(f"verifying {saved.run_id} again found {ok} of {verification.records} records ok")
    return RawScan(saved.run_id, verification.rows_read, verification.seconds)
