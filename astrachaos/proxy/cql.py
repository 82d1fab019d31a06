"""CQL native-protocol envelopes (v4 and v5): header, the requests a fault targets, their tables.

An envelope is a 9-byte big-endian header (version with the response bit, flags, stream,
opcode, body length) and a body. Only what fault injection needs is decoded: the statement
text of QUERY and PREPARE, the prepared id of EXECUTE, the statements of a BATCH, the
consistency level of each, and the id in a RESULT Prepared.
"""

from __future__ import annotations

import functools
import re
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

HEADER = struct.Struct(">BBhBI")
HEADER_LENGTH = HEADER.size  # 9
_SHORT = struct.Struct(">H")
RESPONSE_BIT = 0x80
DSE_VERSIONS = (0x41, 0x42)  # the driver tries these first, and the server refuses them


class Opcode(IntEnum):
    """Message kinds (spec section 2.4)."""

    ERROR = 0x00
    STARTUP = 0x01
    READY = 0x02
    AUTHENTICATE = 0x03
    OPTIONS = 0x05
    SUPPORTED = 0x06
    QUERY = 0x07
    RESULT = 0x08
    PREPARE = 0x09
    EXECUTE = 0x0A
    REGISTER = 0x0B
    EVENT = 0x0C
    BATCH = 0x0D
    AUTH_CHALLENGE = 0x0E
    AUTH_RESPONSE = 0x0F
    AUTH_SUCCESS = 0x10


class Flag(IntEnum):
    """Envelope header flags."""

    COMPRESSED = 0x01
    TRACING = 0x02
    CUSTOM_PAYLOAD = 0x04
    WARNING = 0x08
    BETA = 0x10


RESULT_PREPARED = 0x0004
BATCH_TYPES = {0: "LOGGED", 1: "UNLOGGED", 2: "COUNTER"}


class FrameError(ValueError):
    """Bytes that cannot be read as the envelope they claim to be."""


class Envelope(NamedTuple):
    """One CQL message with its header fields (immutable; a tuple: made per frame, a frozen
    dataclass's __init__ cost ~3 µs of it)."""

    version: int  # without the response bit
    is_response: bool
    flags: int
    stream: int
    opcode: int
    body: bytes
    compressed: bool = False  # the body arrived compressed and is held inflated: compress it again

    def encode(self) -> bytes:
        """The envelope's bytes, header then body."""
        version = self.version | (RESPONSE_BIT if self.is_response else 0)
        return HEADER.pack(version, self.flags, self.stream, self.opcode, len(self.body)) + self.body


def split_envelopes(buffer: bytearray, limit: int | None = None) -> list[Envelope]:
    """Remove and return the whole envelopes (at most `limit`) at the start of `buffer`."""
    envelopes: list[Envelope] = []
    at, size = 0, len(buffer)
    try:
        while size - at >= HEADER_LENGTH and (limit is None or len(envelopes) < limit):
            version, flags, stream, opcode, length = HEADER.unpack_from(buffer, at)
            if not (1 <= version & 0x7F <= 6 or version & 0x7F in DSE_VERSIONS):
                raise FrameError(f"not a CQL envelope (version byte {version:#04x})")
            end = at + HEADER_LENGTH + length
            if size < end:
                break
            body = bytes(buffer[at + HEADER_LENGTH : end])
            at = end
            envelopes.append(Envelope(version & 0x7F, version >= RESPONSE_BIT, flags, stream, opcode, body))
    finally:
        del buffer[:at]  # once: deleting from the front per envelope copied the rest each time
    return envelopes


_Int = int  # `int` is also a method name of the cursor below


class _Body:
    """A cursor over an envelope body, with the spec's notations as readers."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0
        self.last_size = 0

    def take(self, size: int) -> bytes:
        if size < 0 or self.at + size > len(self.data):
            raise FrameError("body shorter than its fields")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def short(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def int(self) -> int:
        return int(struct.unpack(">i", self.take(4))[0])

    def string(self) -> str:
        return self.take(self.short()).decode("utf-8", "replace")

    def long_string(self) -> str:
        return self.take(self.int()).decode("utf-8", "replace")

    def short_bytes(self) -> bytes:
        return self.take(self.short())

    def value(self) -> None:
        size = self.int()
        if size > 0:
            self.take(size)

    def skip_bytes_map(self) -> None:
        for _ in range(self.short()):
            self.string()
            self.value()

    def skip_string_list(self) -> None:
        for _ in range(self.short()):
            self.string()

    def long(self) -> _Int:
        return _Int(struct.unpack(">q", self.take(8))[0])

    def bytes_value(self) -> bytes | None:
        """A [bytes] value: None for null (and for unset, -2, which a caller tells apart by `last`)."""
        size = self.int()
        self.last_size = size
        return self.take(size) if size >= 0 else None


def response_body(envelope: Envelope) -> _Body:
    """A cursor past a response's optional tracing id, warnings and custom payload; FrameError if short."""
    body = _Body(envelope.body)
    if envelope.flags & Flag.TRACING:
        body.take(16)
    if envelope.flags & Flag.WARNING:
        body.skip_string_list()
    if envelope.flags & Flag.CUSTOM_PAYLOAD:
        body.skip_bytes_map()
    return body


BodyReader = _Body  # the cursor, for the modules that decode more of a body (capture, topology)


_TABLE = re.compile(
    r"""\b(?:INSERT\s+INTO|UPDATE|DELETE\b.*?\bFROM|SELECT\b.*?\bFROM)\s+
        (?:(?P<ks>"[^"]+"|\w+)\s*\.\s*)?(?P<table>"[^"]+"|\w+)""",
    re.IGNORECASE | re.DOTALL | re.VERBOSE,
)


@dataclass(frozen=True)
class Statement:
    """One CQL statement a request carries: its text (when known) and its target table."""

    text: str | None
    keyspace: str | None = None
    table: str | None = None


@functools.lru_cache(maxsize=4096)
def statement_of(text: str | None) -> Statement:
    """The statement with keyspace and table read from its text (names lowercased unless quoted)."""
    if text is None:
        return Statement(None)
    match = _TABLE.search(text)
    if match is None:
        return Statement(text)
    return Statement(text, _name(match.group("ks")), _name(match.group("table")))


def _name(raw: str | None) -> str | None:
    if raw is None:
        return None
    return raw[1:-1] if raw.startswith('"') else raw.lower()


@dataclass(frozen=True)
class Request:
    """What a QUERY, PREPARE, EXECUTE or BATCH asks for."""

    opcode: int
    stream: int
    consistency: int = 1  # ONE when the body does not say
    statements: list[Statement] = field(default_factory=list)
    prepared_ids: list[bytes] = field(default_factory=list)
    batch_type: str | None = None


def read_request(envelope: Envelope, prepared: dict[bytes, str]) -> Request | None:
    """Decode a request the injector may target; None for other opcodes or unreadable bodies.

    `prepared` maps prepared ids seen so far to their statement text (for EXECUTE and BATCH).
    """
    if envelope.is_response or envelope.flags & Flag.COMPRESSED:
        return None
    if envelope.opcode not in (Opcode.QUERY, Opcode.PREPARE, Opcode.EXECUTE, Opcode.BATCH):
        return None
    body = _Body(envelope.body)
    try:
        if envelope.flags & Flag.CUSTOM_PAYLOAD:
            body.skip_bytes_map()
        return _read_request_body(envelope, body, prepared)
    except FrameError:
        return None


def _read_request_body(envelope: Envelope, body: _Body, prepared: dict[bytes, str]) -> Request:
    opcode, stream = envelope.opcode, envelope.stream
    if opcode in (Opcode.QUERY, Opcode.PREPARE):
        text = body.long_string()
        consistency = body.short() if opcode == Opcode.QUERY else 1
        return Request(opcode, stream, consistency, [statement_of(text)])
    if opcode == Opcode.EXECUTE:
        prepared_id = body.short_bytes()
        if envelope.version >= 5:
            body.short_bytes()  # result metadata id
        consistency = body.short()
        return Request(opcode, stream, consistency, [statement_of(prepared.get(prepared_id))], [prepared_id])
    batch_type = BATCH_TYPES.get(body.byte(), "LOGGED")
    statements: list[Statement] = []
    ids: list[bytes] = []
    for _ in range(body.short()):
        if body.byte() == 0:
            statements.append(statement_of(body.long_string()))
        else:
            prepared_id = body.short_bytes()
            ids.append(prepared_id)
            statements.append(statement_of(prepared.get(prepared_id)))
        for _value in range(body.short()):
            body.value()
    return Request(opcode, stream, body.short(), statements, ids, batch_type)


def execute_prepared_id(envelope: Envelope) -> bytes | None:
    """The prepared id of an EXECUTE whose head (ids, consistency) is readable, else None."""
    body = envelope.body
    if envelope.flags & (Flag.COMPRESSED | Flag.CUSTOM_PAYLOAD) or len(body) < 2:
        return None
    end = 2 + _SHORT.unpack_from(body, 0)[0]
    head = end
    if envelope.version >= 5:
        if len(body) < head + 2:
            return None
        head += 2 + _SHORT.unpack_from(body, head)[0]
    return body[2:end] if len(body) >= head + 2 else None


def prepared_id_of(envelope: Envelope) -> bytes | None:
    """The id in a RESULT Prepared response, else None."""
    if not envelope.is_response or envelope.opcode != Opcode.RESULT:
        return None
    if envelope.flags & Flag.COMPRESSED:
        return None
    try:
        body = response_body(envelope)
        if body.int() != RESULT_PREPARED:
            return None
        return body.short_bytes()
    except FrameError:
        return None


def startup_compression(envelope: Envelope) -> str | None:
    """The COMPRESSION option of a STARTUP request, if any."""
    body = _Body(envelope.body)
    try:
        for _ in range(body.short()):
            key, value = body.string(), body.string()
            if key.upper() == "COMPRESSION":
                return value
    except FrameError:
        return None
    return None
