"""Write capture on the proxy: every INSERT/UPDATE/DELETE that passes, its key, and its answer.

Keys come from the PREPARED metadata of prepared statements (bind marker names and types) or
from the statement text of a QUERY with values, plus the table's primary key from
`system_schema` (read over the proxy's own driver session and cached). A table not known yet is
looked up in a worker thread while that one connection waits (its frames stay in order; every
other connection keeps flowing). A write whose key cannot be known is recorded as unverifiable
with its reason. The answer the client gets is recorded on the same stream: RESULT, ERROR
(class and message), or the connection closing first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from astrachaos.capture.cells import driver_type as driver_type  # re-exported: it lived here
from astrachaos.capture.keys import Reason, TableKeys, is_system_keyspace, table_keys_from_rows
from astrachaos.capture.ledger import CaptureLedger
from astrachaos.capture.model import Told, Unverifiable, WriteKind
from astrachaos.proxy.bound import BoundRequest, BoundStatement, PreparedShape, read_bound
from astrachaos.proxy.cql import (
    BodyReader,
    Envelope,
    Flag,
    FrameError,
    Opcode,
    Statement,
    execute_prepared_id,
    response_body,
    statement_of,
)
from astrachaos.proxy.statements import Kind, Shape, shape_of
from astrachaos.standalone.capture_plan import WritePlan, execute_values, plan_of

log = logging.getLogger(__name__)

ERROR_CLASSES = {
    0x0000: "ServerError", 0x000A: "ProtocolError", 0x0100: "AuthenticationError",
    0x1000: "Unavailable", 0x1001: "Overloaded", 0x1002: "IsBootstrapping",
    0x1003: "TruncateError", 0x1100: "WriteTimeout", 0x1200: "ReadTimeout",
    0x1300: "ReadFailure", 0x1400: "FunctionFailure", 0x1500: "WriteFailure",
    0x1600: "CDCWriteFailure", 0x1700: "CASWriteUnknown", 0x2000: "SyntaxException",
    0x2100: "Unauthorized", 0x2200: "InvalidRequest", 0x2300: "ConfigurationException",
    0x2400: "AlreadyExists", 0x2500: "Unprepared",
}  # fmt: skip
_KINDS = {Kind.INSERT: WriteKind.INSERT, Kind.UPDATE: WriteKind.UPDATE, Kind.DELETE: WriteKind.DELETE}
SchemaRows = Callable[[], Sequence[tuple[str, str, str, str, int, str]]]


TableName = tuple[str, str]
RETRY_MISSING_S = 1.0  # a table still unknown after a read is looked up again at most this often


def schema_of(session: Any) -> SchemaRows:
    """What a `SchemaCache` reads, over a driver `session`: every column of every table."""

    def fetch() -> list[tuple[str, str, str, str, int, str]]:
        rows = session.execute(
            "SELECT keyspace_name, table_name, column_name, kind, position, type FROM system_schema.columns"
        )
        return [tuple(r) for r in rows]

    return fetch


class SchemaCache:
    """Primary keys of every table, from `system_schema.columns`; read again on a miss (≤ 1/s per table).

    `get` never reads: the proxy loop must not block. `lookup` starts the read in the cache's own
    worker thread (one at a time, shared by every connection that waits for it).
    """

    def __init__(self, fetch: SchemaRows, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._tables: dict[TableName, TableKeys] = {}
        self._fetched_at = 0.0
        self._missed: dict[TableName, float] = {}
        self._lock = threading.Lock()
        self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="proxy-schema")
        self._pending: concurrent.futures.Future[None] | None = None

    def refresh(self) -> None:
        """Read every table's columns now."""
        rows = self._fetch()
        grouped: dict[tuple[str, str], list[tuple[str, str, int, str]]] = {}
        for keyspace, table, column, kind, position, cql_type in rows:
            grouped.setdefault((keyspace, table), []).append((column, kind, position, cql_type))
        tables = {}
        for (keyspace, table), columns in grouped.items():
            keys = table_keys_from_rows(keyspace, table, columns)
            if keys is not None:
                tables[(keyspace, table)] = keys
        with self._lock:
            self._tables = tables
            self._fetched_at = time.monotonic()

    def get(self, keyspace: str, table: str) -> TableKeys | None:
        """The table's keys as last read (never reads: see `lookup`)."""
        return self._tables.get((keyspace, table))

    def lookup(self, tables: Iterable[TableName]) -> concurrent.futures.Future[None] | None:
        """A read of system_schema to wait for, if one of `tables` is unknown; None: nothing to wait for.

        A read already under way is joined; a table is read again at most once a second, so a
        caller looping `while (f := lookup(t)) is not None: wait f` stops.
        """
        with self._lock:
            unknown = [t for t in tables if t not in self._tables]
            if not unknown:
                return None
            if self._pending is not None and not self._pending.done():
                return self._pending
            now = self._clock()
            due = [t for t in unknown if now - self._missed.get(t, float("-inf")) > RETRY_MISSING_S]
            if not due:
                return None
            for name in due:
                self._missed[name] = now
            self._pending = self._worker.submit(self._refresh_logged)
            return self._pending

    def _refresh_logged(self) -> None:
        try:
            self.refresh()
        except Exception as error:  # the database may be unreachable; the writes stay counted
            log.warning("cannot read system_schema: %s", error)

    def close(self) -> None:
        """Stop the worker thread (a read under way finishes on its own)."""
        self._worker.shutdown(wait=False, cancel_futures=True)


@dataclass
class _Prepared:
    text: str
    shape: Shape
    bind: PreparedShape
    target: Statement
    plan: tuple[TableKeys, WritePlan | Reason] | None = None  # for the schema it was made with


class WriteCapture:
    """The capture shared by every proxied connection: ledger, schema, prepared statements."""

    def __init__(self, ledger: CaptureLedger, schema: SchemaCache) -> None:
        self.ledger = ledger
        self.schema = schema
        self.prepared: dict[bytes, _Prepared] = {}
        self.counts: Counter[str] = Counter()
        self._next_connection = 0

    def connection(self, node: str, faults_now: Callable[[], str | None]) -> ConnectionCapture:
        """The capture state of one new connection to `node`."""
        self._next_connection += 1
        return ConnectionCapture(self, f"c{self._next_connection}@{node}", faults_now)


class ConnectionCapture:
    """One connection's writes in flight (stream → ledger ids) and its current keyspace."""

    def __init__(self, capture: WriteCapture, name: str, faults_now: Callable[[], str | None]) -> None:
        self.capture = capture
        self.name = name
        self.faults_now = faults_now
        self.keyspace: str | None = None
        self.mark = 0  # ledger number of the latest answer recorded: hold the client until durable
        self._in_flight: dict[int, list[int]] = {}
        self._preparing: dict[int, str] = {}
        self._using: dict[int, str] = {}
        self._unknown: dict[int, tuple[str, str | None]] = {}  # EXECUTE of an unseen PREPARE

    # -- requests ---------------------------------------------------------------------------

    async def prepare(self, envelopes: Sequence[Envelope]) -> None:
        """Before `envelopes` are relayed: wait (off the loop) for the schema of the tables they write."""
        tables, schema = self._tables_written(envelopes), self.capture.schema
        while (reading := schema.lookup(tables)) is not None:
            self.capture.counts["schema_lookups_waited"] += 1
            await asyncio.wrap_future(reading)

    def wait_for_schema(self, envelopes: Sequence[Envelope]) -> None:
        """`prepare`, blocking the calling thread (a tape's reader: no loop waits for it)."""
        tables, schema = self._tables_written(envelopes), self.capture.schema
        while (reading := schema.lookup(tables)) is not None:
            self.capture.counts["schema_lookups_waited"] += 1
            reading.result()

    def _tables_written(self, envelopes: Sequence[Envelope]) -> set[TableName]:
        """The tables `envelopes` write whose plans are not made for the schema known now."""
        tables: set[TableName] = set()
        for envelope in envelopes:
            if envelope.opcode not in (Opcode.QUERY, Opcode.EXECUTE, Opcode.BATCH):
                continue
            if envelope.flags & Flag.COMPRESSED or self._planned(envelope):
                continue
            request = read_bound(envelope)
            for statement in request.statements if request is not None else ():
                target = self._target(request, statement)  # type: ignore[arg-type]
                if target is not None:
                    tables.add(target)
        return tables

    def ready(self, envelopes: Sequence[Envelope]) -> bool:
        """Whether `prepare` would have nothing to wait for: no writes, or EXECUTEs already planned."""
        writes = (Opcode.QUERY, Opcode.EXECUTE, Opcode.BATCH)
        return all(e.opcode not in writes or self._planned(e) for e in envelopes)

    def _planned(self, envelope: Envelope) -> bool:
        """Whether `envelope` is an EXECUTE planned for the table schema known now (nothing to look up)."""
        if envelope.opcode != Opcode.EXECUTE or envelope.flags & Flag.CUSTOM_PAYLOAD:
            return False
        prepared_id = execute_prepared_id(envelope)
        prepared = None if prepared_id is None else self.capture.prepared.get(prepared_id)
        if prepared is None or prepared.plan is None:
            return False
        keys = prepared.plan[0]
        return self.capture.schema.get(keys.keyspace, keys.table) is keys

    def _target(self, request: BoundRequest, statement: BoundStatement) -> TableName | None:
        """The (keyspace, table) a statement writes to, when its text and metadata tell."""
        prepared = self.capture.prepared.get(statement.prepared_id) if statement.prepared_id else None
        if statement.prepared_id is not None and prepared is None:
            return None
        text = prepared.text if prepared is not None else statement.text or ""
        shape = prepared.shape if prepared is not None else shape_of(text)
        if shape.kind is Kind.OTHER:
            return None
        target = prepared.target if prepared is not None else statement_of(text)
        keyspace, table = target.keyspace or request.keyspace or self.keyspace, target.table
        if prepared is not None and prepared.bind.columns:
            keyspace, table = prepared.bind.columns[0].keyspace, prepared.bind.columns[0].table
        if keyspace is None or table is None or is_system_keyspace(keyspace):
            return None
        return keyspace, table

    def request(
        self, envelope: Envelope, fault: str | None, refused: str | None, *, toxics: bool = True
    ) -> None:
        """A client request: capture its writes. `refused`: the error class answered instead;
        `toxics`: whether toxics may have been in force as it was forwarded (False: none were)."""
        if envelope.opcode == Opcode.PREPARE:
            text = _query_text(envelope)
            if text is not None:
                self._preparing[envelope.stream] = text
            return
        if envelope.opcode == Opcode.QUERY:
            text = _query_text(envelope)
            if text is not None and text.lstrip()[:4].upper() == "USE ":
                self._using[envelope.stream] = text.strip()[4:].strip().strip(";").strip('"')
        if envelope.opcode not in (Opcode.QUERY, Opcode.EXECUTE, Opcode.BATCH):
            return
        if envelope.flags & Flag.COMPRESSED:
            self.capture.counts["compressed_requests_not_followed"] += 1
            return
        now = self.faults_now() if toxics else None
        faults = ", ".join(f for f in (fault, now) if f) if now else fault
        ids = self._planned_execute(envelope, faults)
        if ids is None:
            request = read_bound(envelope)
            if request is None:
                self.capture.counts["requests_not_read"] += 1
                return
            ids = []
            for statement in request.statements:
                write_id = self._write(request, statement, faults)
                if write_id is not None:
                    ids.append(write_id)
        if not ids:
            return
        if refused is not None:
            for write_id in ids:
                self.mark = self.capture.ledger.answered(
                    write_id, Told.ERROR, refused, "astrachaos: injected"
                )
        else:
            self._in_flight[envelope.stream] = ids

    def _planned_execute(self, envelope: Envelope, fault: str | None) -> list[int] | None:
        """The hot path: an EXECUTE of a statement whose plan is made, for the table schema now known.

        None when it is not one (the request is then read in full).
        """
        if envelope.opcode != Opcode.EXECUTE or envelope.flags & Flag.CUSTOM_PAYLOAD:
            return None
        read = execute_values(envelope.body, envelope.version)
        if read is None:
            return None
        prepared_id, values, timestamp = read
        prepared = self.capture.prepared.get(prepared_id)
        if prepared is None or prepared.plan is None:
            return None
        keys, plan = prepared.plan
        if isinstance(plan, Reason) or self.capture.schema.get(keys.keyspace, keys.table) is not keys:
            return None
        self.capture.counts["writes_seen"] += 1
        cells = plan.cells(values, timestamp, self.capture.ledger)
        if isinstance(cells, Reason):
            self._unverifiable(cells, keys.keyspace, keys.table, prepared.text, fault)
            return []
        token, key, column_set, digest, fingerprint, timestamp = cells
        write_id = self.capture.ledger.sent_cells(
            plan.table_id, token, key, column_set, digest, fingerprint, plan.kind, timestamp, fault,
            self.name, envelope.stream,
        )  # fmt: skip
        return [write_id]

    def _write(self, request: BoundRequest, statement: BoundStatement, fault: str | None) -> int | None:
        capture = self.capture
        prepared = capture.prepared.get(statement.prepared_id) if statement.prepared_id else None
        if statement.prepared_id is not None and prepared is None:
            if request.opcode == Opcode.BATCH:  # only writes go in a batch
                return self._unverifiable(
                    Reason.UNKNOWN_PREPARED, None, None, statement.prepared_id.hex(), fault
                )
            self._unknown[request.stream] = (statement.prepared_id.hex(), fault)  # a read or a write?
            return None
        text = prepared.text if prepared is not None else statement.text or ""
        shape = prepared.shape if prepared is not None else shape_of(text)
        if shape.kind is Kind.OTHER:
            if text.lstrip()[:5].upper() == "BEGIN":
                return self._unverifiable(Reason.UNPARSED, None, None, text, fault)
            return None
        target = prepared.target if prepared is not None else statement_of(text)
        keyspace = target.keyspace or request.keyspace or self.keyspace
        table = target.table
        if prepared is not None and prepared.bind.columns:
            keyspace, table = prepared.bind.columns[0].keyspace, prepared.bind.columns[0].table
        if is_system_keyspace(keyspace):
            return None
        capture.counts["writes_seen"] += 1
        if keyspace is None or table is None:
            return self._unverifiable(Reason.UNPARSED, keyspace, table, text, fault)
        if shape.conditional:
            return self._unverifiable(Reason.CONDITIONAL, keyspace, table, text, fault)
        if shape.column_delete:
            return self._unverifiable(Reason.COLUMN_DELETE, keyspace, table, text, fault)
        keys = capture.schema.get(keyspace, table)
        if keys is None:
            return self._unverifiable(Reason.UNKNOWN_TABLE, keyspace, table, text, fault)
        if not statement.values and shape.literal:
            return self._unverifiable(Reason.LITERALS, keyspace, table, text, fault)
        plan = self._plan(statement, prepared, shape, keys)
        if isinstance(plan, Reason):
            return self._unverifiable(plan, keyspace, table, text, fault)
        cells = plan.cells(statement.values, request.timestamp, capture.ledger)
        if isinstance(cells, Reason):
            return self._unverifiable(cells, keyspace, table, text, fault)
        token, key, column_set, digest, fingerprint, timestamp = cells
        return capture.ledger.sent_cells(
            plan.table_id, token, key, column_set, digest, fingerprint, plan.kind, timestamp, fault,
            self.name, request.stream,
        )  # fmt: skip

    def _plan(
        self, statement: BoundStatement, prepared: _Prepared | None, shape: Shape, keys: TableKeys
    ) -> WritePlan | Reason:
        """The write plan of a prepared statement (made once per table schema) or of a QUERY text."""
        if prepared is not None and prepared.plan is not None and prepared.plan[0] is keys:
            return prepared.plan[1]
        if prepared is not None:
            names: Sequence[str] | None = [c.name for c in prepared.bind.columns]
        else:
            names = statement.names or shape.markers
        if names is None or len(names) != len(statement.values):
            return Reason.UNPARSED
        plan = plan_of(keys, names, _KINDS[shape.kind], self.capture.ledger,
                       comparable=not shape.arithmetic, literal=list(shape.literal))  # fmt: skip
        if prepared is not None:
            prepared.plan = (keys, plan)
        return plan

    def _unverifiable(
        self, reason: Reason, keyspace: str | None, table: str | None, text: str, fault: str | None
    ) -> int | None:
        """Count the write as unverifiable; None (it has no ledger id)."""
        self.capture.counts["unverifiable"] += 1
        self.capture.ledger.unverifiable(
            Unverifiable(reason.value, keyspace, table, text, self.name, self.capture.ledger.clock(), fault)
        )
        return None

    # -- responses --------------------------------------------------------------------------

    def response(self, envelope: Envelope, replaced: Envelope | None) -> None:
        """The server's answer on a stream; `replaced`: what the client gets instead (None: nothing)."""
        stream = envelope.stream
        if self._preparing or self._using or self._unknown:  # else the hot path: a write's answer
            text = self._preparing.pop(stream, None)
            if text is not None:
                self._learn(envelope, text)
            keyspace = self._using.pop(stream, None)
            if keyspace is not None and envelope.opcode == Opcode.RESULT:
                self.keyspace = keyspace
            unknown = self._unknown.pop(stream, None)
            if unknown is not None and not _is_rows(envelope):  # no rows back: it was not a read
                self._unverifiable(Reason.UNKNOWN_PREPARED, None, None, unknown[0], unknown[1])
        ids = self._in_flight.pop(stream, None)
        if not ids:
            return
        told = replaced if replaced is not None else envelope
        if told.opcode == Opcode.ERROR:
            error_class, message = _error_of(told)
            for write_id in ids:
                self.mark = self.capture.ledger.answered(write_id, Told.ERROR, error_class, message)
        else:
            self.mark = self.capture.ledger.answered_all(ids, Told.RESULT)

    def commit_through(self, number: int) -> None:
        """Commit the capture ledger through row `number` now (the proxy's loop, holding answers)."""
        self.capture.ledger.commit_through(number)

    def dropped(self, stream: int) -> None:
        """The server's answer on `stream` was swallowed: the client is told nothing (yet)."""
        self._in_flight.pop(stream, None)

    def closed(self) -> None:
        """The connection closed: writes still in flight were never answered."""
        for ids in self._in_flight.values():
            for write_id in ids:
                self.mark = self.capture.ledger.answered(write_id, Told.CLOSED)
        self._in_flight.clear()

    def _learn(self, envelope: Envelope, text: str) -> None:
        from astrachaos.proxy.bound import read_prepared

        bind = read_prepared(envelope)
        if bind is not None:
            self.capture.prepared[bind.prepared_id] = _Prepared(
                text, shape_of(text), bind, statement_of(text)
            )


def _query_text(envelope: Envelope) -> str | None:
    if envelope.flags & Flag.COMPRESSED:
        return None
    body = BodyReader(envelope.body)
    try:
        if envelope.flags & Flag.CUSTOM_PAYLOAD:
            body.skip_bytes_map()
        return body.long_string()
    except FrameError:
        return None


def _is_rows(envelope: Envelope) -> bool:
    """Whether a RESULT carries rows (the answer to a read)."""
    if envelope.opcode != Opcode.RESULT:
        return False
    try:
        body = response_body(envelope)
        return body.int() == 0x0002
    except FrameError:
        return False


def _error_of(envelope: Envelope) -> tuple[str, str]:
    try:
        body = response_body(envelope)
        code = body.int()
        return ERROR_CLASSES.get(code, f"Error{code:#06x}"), body.string()
    except FrameError:
        return "Error", ""
