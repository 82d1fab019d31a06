"""ERROR responses as a coordinator sends them (spec section "Error codes"), for a given request."""

from __future__ import annotations

import struct
from enum import StrEnum

from astrachaos.proxy.cql import Envelope, Opcode, Request


class ErrorKind(StrEnum):
    """The server errors the protocol injector can answer with."""

    OVERLOADED = "overloaded"
    WRITE_TIMEOUT = "write_timeout"
    UNAVAILABLE = "unavailable"
    SERVER_ERROR = "server_error"
    IS_BOOTSTRAPPING = "is_bootstrapping"


CODES = {
    ErrorKind.SERVER_ERROR: 0x0000,
    ErrorKind.UNAVAILABLE: 0x1000,
    ErrorKind.OVERLOADED: 0x1001,
    ErrorKind.IS_BOOTSTRAPPING: 0x1002,
    ErrorKind.WRITE_TIMEOUT: 0x1100,
}

MESSAGES = {
    ErrorKind.SERVER_ERROR: "astrachaos: injected server error",
    ErrorKind.UNAVAILABLE: "Cannot achieve consistency level (astrachaos: injected)",
    ErrorKind.OVERLOADED: "Server is in overloaded state (astrachaos: injected)",
    ErrorKind.IS_BOOTSTRAPPING: "Cannot read from a bootstrapping node (astrachaos: injected)",
    ErrorKind.WRITE_TIMEOUT: "Operation timed out - received only 0 responses. (astrachaos: injected)",
}

# Replicas a consistency level waits for on a single data centre of three (QUORUM-like: 2).
_REQUIRED = {0x0000: 1, 0x0001: 1, 0x0002: 2, 0x0003: 3, 0x000A: 1}


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack(">H", len(data)) + data


def required_replicas(consistency: int) -> int:
    """How many replicas the consistency level needs (QUORUM/ALL-like levels: 2)."""
    return _REQUIRED.get(consistency, 2)


def write_type(request: Request) -> str:
    """The writeType a coordinator would report for this request."""
    if request.opcode != Opcode.BATCH:
        return "SIMPLE"
    return {"LOGGED": "BATCH", "UNLOGGED": "UNLOGGED_BATCH", "COUNTER": "COUNTER"}.get(
        request.batch_type or "LOGGED", "BATCH"
    )


def error_body(kind: ErrorKind, request: Request) -> bytes:
    """The ERROR body: <code><message> and the fields that code carries."""
    body = struct.pack(">i", CODES[kind]) + _string(MESSAGES[kind])
    required = required_replicas(request.consistency)
    if kind is ErrorKind.UNAVAILABLE:
        body += struct.pack(">Hii", request.consistency, required, required - 1)
    elif kind is ErrorKind.WRITE_TIMEOUT:
        # <contentions> follows only for writeType CAS, which is never reported here.
        body += struct.pack(">Hii", request.consistency, 0, required) + _string(write_type(request))
    return body


def error_envelope(kind: ErrorKind, request: Request, version: int) -> Envelope:
    """The ERROR response to `request`: same stream, response bit set, no flags."""
    return Envelope(version, True, 0, request.stream, Opcode.ERROR, error_body(kind, request))
