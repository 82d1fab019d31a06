"""Reading a run's partitions back: whole partitions, paged by the driver's callbacks, with retries.

`PartitionReader.scan_many` reads READ_AHEAD partitions at once (no thread per read) and hands each
over complete, as the driver decoded it or, for a partition that can be matched as bytes, as the
node sent it (`WireRows`); `scan` and `read` read one partition, each row digested (`Stored`) as
the ledger digested the record meant to be there. `verify.partitions` joins them with the ledger.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from xxhash import xxh3_64_hexdigest

from astrachaos.driver.table import RunTable
from astrachaos.driver.wire import WirePage, wire_rows_handler
from astrachaos.errors import EnvironmentProblem
from astrachaos.workload.plan import Digest, applied_digest, digest_of

log = logging.getLogger(__name__)
_READ_ATTEMPTS = 3
READ_AHEAD = 4  # partitions in flight while one is joined
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


class PartitionReader:
    """Reads whole partitions of the run table at a given consistency, paged, with retries.

    Rows come back as plain tuples (no named tuple per row): `scan` and `read` digest them into
    `Stored` tuples at once, `scan_many` hands them over as read (or as the node sent them);
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


def _server_message(error: Exception) -> str:
    """The server's own words from a driver error ('table t does not exist'), else the error."""
    text = str(error)
    marker = 'message="'
    if marker in text:
        return text.split(marker, 1)[1].rstrip('"')
    return text
