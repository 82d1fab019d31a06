"""The bound values of QUERY, EXECUTE and BATCH requests, and the bind metadata of PREPARED results.

Only what write capture needs: per statement its text or prepared id, its values (bytes, None for
null, UNSET for unset) with their names when the client sent names, and the request's default
timestamp. PREPARED metadata gives each bind marker's keyspace, table, column name and type.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Final

from astrachaos.proxy.cql import BodyReader, Envelope, Flag, FrameError, Opcode, response_body

UNSET: Final = b"\x00unset"  # a sentinel no real value can be identical to (compared by identity)

_VALUES, _PAGE_SIZE, _PAGING_STATE, _SERIAL, _TIMESTAMP, _NAMES = 0x01, 0x04, 0x08, 0x10, 0x20, 0x40
_WITH_KEYSPACE, _NOW = 0x80, 0x100
RESULT_PREPARED = 0x0004
_GLOBAL_SPEC = 0x0001

Value = bytes | None


@dataclass(frozen=True)
class BoundStatement:
    """One statement of a request with its values."""

    text: str | None
    prepared_id: bytes | None
    values: list[Value]
    names: list[str] | None = None


@dataclass(frozen=True)
class BoundRequest:
    """A QUERY, EXECUTE or BATCH with every statement's values and the request-level fields."""

    opcode: int
    stream: int
    statements: list[BoundStatement]
    timestamp: int | None = None
    keyspace: str | None = None


@dataclass(frozen=True)
class BindColumn:
    """One bind marker of a prepared statement: where it writes and its driver type."""

    keyspace: str
    table: str
    name: str
    cql_type: Any  # a cassandra.cqltypes class


@dataclass(frozen=True)
class PreparedShape:
    """A prepared statement's id and bind markers (from its PREPARED result)."""

    prepared_id: bytes
    columns: list[BindColumn]
    partition_key_indexes: list[int]


def read_bound(envelope: Envelope) -> BoundRequest | None:
    """The values a write request binds; None for other opcodes, compressed or unreadable bodies."""
    if envelope.is_response or envelope.flags & Flag.COMPRESSED:
        return None
    if envelope.opcode not in (Opcode.QUERY, Opcode.EXECUTE, Opcode.BATCH):
        return None
    body = BodyReader(envelope.body)
    try:
        if envelope.flags & Flag.CUSTOM_PAYLOAD:
            body.skip_bytes_map()
        if envelope.opcode == Opcode.BATCH:
            return _batch(envelope, body)
        text, prepared_id = None, None
        if envelope.opcode == Opcode.QUERY:
            text = body.long_string()
        else:
            prepared_id = body.short_bytes()
            if envelope.version >= 5:
                body.short_bytes()
        body.short()  # consistency
        flags = body.int() if envelope.version >= 5 else body.byte()
        values: list[Value] = []
        names: list[str] | None = [] if flags & _NAMES else None
        if flags & _VALUES:
            for _ in range(body.short()):
                if names is not None:
                    names.append(body.string())
                values.append(_value(body))
        if flags & _PAGE_SIZE:
            body.int()
        if flags & _PAGING_STATE:
            body.bytes_value()
        if flags & _SERIAL:
            body.short()
        timestamp = body.long() if flags & _TIMESTAMP else None
        keyspace = body.string() if envelope.version >= 5 and flags & _WITH_KEYSPACE else None
        statement = BoundStatement(text, prepared_id, values, names)
        return BoundRequest(envelope.opcode, envelope.stream, [statement], timestamp, keyspace)
    except FrameError:
        return None


def _batch(envelope: Envelope, body: BodyReader) -> BoundRequest:
    body.byte()  # type
    statements = []
    for _ in range(body.short()):
        if body.byte() == 0:
            text, prepared_id = body.long_string(), None
        else:
            text, prepared_id = None, body.short_bytes()
        values = [_value(body) for _ in range(body.short())]
        statements.append(BoundStatement(text, prepared_id, values))
    body.short()  # consistency
    flags = body.int() if envelope.version >= 5 else body.byte()
    if flags & _SERIAL:
        body.short()
    timestamp = body.long() if flags & _TIMESTAMP else None
    keyspace = body.string() if envelope.version >= 5 and flags & _WITH_KEYSPACE else None
    return BoundRequest(envelope.opcode, envelope.stream, statements, timestamp, keyspace)


def _value(body: BodyReader) -> Value:
    value = body.bytes_value()
    return UNSET if body.last_size == -2 else value


def read_prepared(envelope: Envelope) -> PreparedShape | None:
    """The bind markers of a RESULT Prepared; None for any other answer."""
    from cassandra.protocol import ResultMessage

    if not envelope.is_response or envelope.opcode != Opcode.RESULT or envelope.flags & Flag.COMPRESSED:
        return None
    try:
        body = response_body(envelope)
        if body.int() != RESULT_PREPARED:
            return None
        prepared_id = body.short_bytes()
        if envelope.version >= 5:
            body.short_bytes()
        flags, count = body.int(), body.int()
        pk_indexes = [body.short() for _ in range(body.int())]
        keyspace = table = ""
        if flags & _GLOBAL_SPEC:
            keyspace, table = body.string(), body.string()
        stream = io.BytesIO(body.data)
        columns = []
        for _ in range(count):
            ks, tb = (keyspace, table) if flags & _GLOBAL_SPEC else (body.string(), body.string())
            name = body.string()
            stream.seek(body.at)
            cql_type = ResultMessage.read_type(stream, {})
            body.at = stream.tell()
            columns.append(BindColumn(ks, tb, name, cql_type))
        return PreparedShape(prepared_id, columns, pk_indexes)
    except Exception:  # FrameError, or the driver's type reader failing on bad bytes
        return None
