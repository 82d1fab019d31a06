"""Rows of a captured table as undecoded cells: token ranges (several in flight) and single partitions.

Verification compares the bytes a client bound with the bytes the table holds, so rows are read
without decoding: a session of the caller's cluster whose protocol handler types every result
column as a blob (the driver then hands back each cell's bytes as they came), rows as plain tuples.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator, Sequence
from typing import Any

from astrachaos.capture.cells import base_type
from astrachaos.errors import EnvironmentProblem
from astrachaos.reconcile.schema import TableSchema

log = logging.getLogger(__name__)

PAGE_ROWS = 5_000
_TIMEOUT_S = 120.0


def raw_handler() -> Any:
    """The driver's protocol handler, with every result column read as a blob (its bytes as sent)."""
    from cassandra import cqltypes, protocol

    base = protocol.ProtocolHandler
    result_type = base.message_types_by_opcode[protocol.ResultMessage.opcode]

    def as_blobs(metadata: Any) -> Any:
        return (
            [(ks, table, name, cqltypes.BytesType) for ks, table, name, _ in metadata]
            if metadata
            else metadata
        )

    class RawResult(result_type):  # type: ignore[misc, valid-type]
        def recv_results_metadata(self, f: Any, user_type_map: Any) -> None:
            result_type.recv_results_metadata(self, f, user_type_map)
            self.column_metadata = as_blobs(getattr(self, "column_metadata", None))

        def recv_results_rows(self, f: Any, version: int, types: Any, metadata: Any, encryption: Any) -> None:
            result_type.recv_results_rows(self, f, version, types, as_blobs(metadata), encryption)

    opcodes = dict(base.message_types_by_opcode)
    opcodes[RawResult.opcode] = RawResult
    return type("RawProtocolHandler", (base,), {"message_types_by_opcode": opcodes})


class RawSession:
    """A session of `session`'s cluster that reads cells undecoded, as tuples (closed by `close`)."""

    def __init__(self, session: Any) -> None:
        from cassandra.cluster import EXEC_PROFILE_DEFAULT
        from cassandra.query import tuple_factory

        try:
            self.session = session.cluster.connect()
        except Exception as error:
            raise EnvironmentProblem(f"cannot open a reading session to the cluster: {error}") from error
        self.session.client_protocol_handler = raw_handler()
        try:  # legacy configuration: the session's own row factory
            self.session.row_factory = tuple_factory
            self.profile: Any = EXEC_PROFILE_DEFAULT
        except ValueError:  # execution profiles: a copy of the default one
            self.profile = self.session.execution_profile_clone_update(
                EXEC_PROFILE_DEFAULT, row_factory=tuple_factory
            )

    def close(self) -> None:
        """Close the session's connections (the cluster stays the caller's)."""
        self.session.shutdown()


class RawRows:
    """One table's primary-key and value cells: whole token ranges, or partition by partition."""

    def __init__(self, raw: RawSession, schema: TableSchema, value_columns: Sequence[str]) -> None:
        self.raw = raw
        self.schema = schema
        known = {c.name for c in schema.values}
        self.values = [c for c in value_columns if c in known]
        timed = [c for c in self.values if not schema.column(c).multi_cell]
        self.timed = timed
        keys = [c.quoted for c in schema.primary_key]
        values = [schema.column(c).quoted for c in self.values]
        self.partition = ", ".join(c.quoted for c in schema.partition_key)
        self.selected = ", ".join(keys + values)
        times = [f"WRITETIME({schema.column(c).quoted})" for c in timed]
        where = " AND ".join(f"{c.quoted} = {_from_blob(c.cql_type)}" for c in schema.partition_key)
        self._by_partition = raw.session.prepare(
            f"SELECT {', '.join(keys + values + times)} FROM {schema.qualified} WHERE {where}"
        )

    def ranges(
        self, ranges: Sequence[tuple[int, int]], consistency: str, in_flight: int = 4
    ) -> Iterator[tuple[int, list[tuple[bytes | None, ...]] | BaseException]]:
        """(index, rows) of each token range [low, high] as it completes (an error: the range failed)."""
        from cassandra import ConsistencyLevel
        from cassandra.query import SimpleStatement

        level = ConsistencyLevel.name_to_value[consistency]
        done: queue.Queue[tuple[int, Any]] = queue.Queue()
        pending = list(reversed(range(len(ranges))))

        def start(index: int, attempt: int = 0) -> None:
            low, high = ranges[index]
            statement = SimpleStatement(
                f"SELECT {self.selected} FROM {self.schema.qualified}"
                f" WHERE token({self.partition}) >= {low} AND token({self.partition}) <= {high}",
                fetch_size=PAGE_ROWS, consistency_level=level,
            )  # fmt: skip
            future = self.raw.session.execute_async(
                statement, timeout=_TIMEOUT_S, execution_profile=self.raw.profile
            )
            rows: list[tuple[bytes | None, ...]] = []

            def page(result: list[tuple[bytes | None, ...]]) -> None:
                rows.extend(result)
                if future.has_more_pages:
                    future.start_fetching_next_page()
                else:
                    done.put((index, rows))

            def failed(error: BaseException) -> None:
                if attempt < 2:
                    log.warning("token range %s failed (%s); reading it again", ranges[index], error)
                    start(index, attempt + 1)
                else:
                    done.put((index, error))

            future.add_callbacks(page, failed)

        for _ in range(min(in_flight, len(pending))):
            start(pending.pop())
        for _ in range(len(ranges)):
            index, outcome = done.get()
            if pending:
                start(pending.pop())
            yield index, outcome

    def partitions(
        self, partitions: Sequence[Sequence[bytes]], consistency: str, concurrency: int
    ) -> list[list[tuple[bytes | None, ...]] | BaseException]:
        """The rows of each partition (its partition-key cells), or the error reading it."""
        from cassandra import ConsistencyLevel
        from cassandra.concurrent import execute_concurrent_with_args

        self._by_partition.consistency_level = ConsistencyLevel.name_to_value[consistency]
        results = execute_concurrent_with_args(
            self.raw.session, self._by_partition, [tuple(p) for p in partitions], concurrency=concurrency,
            raise_on_first_error=False, execution_profile=self.raw.profile,
        )  # fmt: skip
        return [list(r.result_or_exc) if r.success else r.result_or_exc for r in results]


def _from_blob(cql_type: str) -> str:
    """A bind marker taking the cell's bytes as they are, for a column of `cql_type`."""
    base = base_type(cql_type)
    return "?" if base == "blob" else f"blobAs{base}(?)"
