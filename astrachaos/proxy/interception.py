"""CQL-aware relaying of one proxied connection: follow the framing, let policies answer requests.

Both directions are cut into envelopes (unframed before the STARTUP handshake and for v4;
inside v5 segments after READY/AUTHENTICATE). Each QUERY/EXECUTE/BATCH is offered to the
active request policies, which may answer it with an ERROR without forwarding, or forward it
and then replace or drop the server's answer. Whatever is forwarded is framed again.
A stream this relay cannot follow (lz4 in v5, a CRC it cannot verify) is passed through raw,
unless the connection fronts a standalone proxy (`topology` given): then compression is taken
out of SUPPORTED and a client that asks for it anyway is refused with a ProtocolError, so no
connection escapes the address rewriting or the capture.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from astrachaos.proxy.cql import (
    Envelope,
    Flag,
    FrameError,
    Opcode,
    Request,
    prepared_id_of,
    read_request,
    split_envelopes,
    startup_compression,
)
from astrachaos.proxy.error_frames import ErrorKind, error_envelope
from astrachaos.proxy.segments import SegmentError, SegmentReader, encode_envelopes
from astrachaos.proxy.topology import (
    Address,
    AddressMap,
    rewrite_event,
    rewrite_rows,
    strip_compression,
    system_table,
)


class WriteObserver(Protocol):
    """What records a connection's writes and their answers (the standalone proxy's capture)."""

    mark: int  # the latest durability number: hold the client's bytes until it is committed

    def request(self, envelope: Envelope, fault: str | None, refused: str | None) -> None: ...

    def response(self, envelope: Envelope, replaced: Envelope | None) -> None: ...

    def dropped(self, stream: int) -> None: ...

    def closed(self) -> None: ...

    def when_durable(self, number: int, callback: Callable[[], None]) -> None: ...


log = logging.getLogger(__name__)

TARGETED = (Opcode.QUERY, Opcode.EXECUTE, Opcode.BATCH)


class Action(StrEnum):
    """What a policy does to one request."""

    REPLY = "error"  # answer with an ERROR, never forward
    REPLACE = "forward-then-timeout"  # forward, then answer ERROR instead of the real result
    DROP = "forward-then-drop"  # forward, then swallow the real result


@dataclass(frozen=True)
class Decision:
    """A policy's verdict on one request."""

    action: Action
    error: ErrorKind = ErrorKind.WRITE_TIMEOUT
    fault: str | None = None  # the fault's name, recorded with captured writes


@dataclass(frozen=True)
class Topology:
    """What a standalone proxy's relay rewrites: node addresses, for the node this connection reaches."""

    addresses: AddressMap
    node: Address
    counts: Counter[str]


RequestPolicy = Callable[[Request], Decision | None]


class PreparedStatements:
    """Prepared id → statement text, learnt from PREPARE requests and their answers (all nodes)."""

    def __init__(self) -> None:
        self._texts: dict[bytes, str] = {}
        self._lock = threading.Lock()

    def learn(self, prepared_id: bytes, text: str) -> None:
        """Remember the text a prepared id stands for."""
        with self._lock:
            self._texts[prepared_id] = text

    def snapshot(self) -> dict[bytes, str]:
        """A copy to read without the lock."""
        with self._lock:
            return dict(self._texts)


class CqlRelay:
    """The CQL state of one proxied connection; called from its two pumps on the proxy loop."""

    def __init__(
        self,
        prepared: PreparedStatements,
        policies: Callable[[], Sequence[RequestPolicy]],
        *,
        topology: Topology | None = None,
        capture: WriteObserver | None = None,
    ) -> None:
        self._prepared = prepared
        self._policies = policies
        self._topology = topology
        self.capture = capture
        self._system: dict[int, str] = {}
        self._raw = False
        self._framed = False
        self._version = 4
        self._client_segments = SegmentReader()
        self._server_segments = SegmentReader()
        self._client_buffer = bytearray()
        self._server_buffer = bytearray()
        self._pending_prepare: dict[int, str] = {}
        self._replace: dict[int, tuple[ErrorKind, Request]] = {}
        self._drop: set[int] = set()

    @property
    def framed(self) -> bool:
        """Whether v5 segment framing is in force."""
        return self._framed

    def from_client(self, data: bytes) -> tuple[bytes, bytes]:
        """Client bytes in; (bytes for the server, bytes answered to the client) out."""
        if self._raw:
            return data, b""
        try:
            envelopes = self._envelopes(data, self._client_segments, self._client_buffer)
        except (FrameError, SegmentError) as error:
            return self._give_up(error, data), b""
        upstream: list[Envelope] = []
        answers: list[Envelope] = []
        for envelope in envelopes:
            answer = self._client_envelope(envelope)
            (upstream if answer is None else answers).append(answer or envelope)
        return self._encode(upstream), self._encode(answers)

    def from_server(self, data: bytes) -> bytes:
        """Server bytes in; bytes for the client out."""
        if self._raw:
            return data
        out: list[bytes] = []
        try:
            while True:
                framed_before = self._framed
                if framed_before:
                    envelopes = self._envelopes(data, self._server_segments, self._server_buffer)
                else:  # one at a time: READY switches the rest of the stream to segments
                    self._server_buffer += data
                    envelopes = split_envelopes(self._server_buffer, limit=1)
                data = b""
                kept = [e for e in (self._server_envelope(e) for e in envelopes) if e is not None]
                if framed_before:
                    out.append(self._encode(kept))
                else:
                    out.append(b"".join(e.encode() for e in kept))
                if framed_before or not envelopes:
                    break
                if self._framed:  # switched: what follows READY is segments
                    data = bytes(self._server_buffer)
                    self._server_buffer.clear()
        except (FrameError, SegmentError) as error:
            out.append(self._give_up(error, data))
        return b"".join(out)

    def _envelopes(self, data: bytes, segments: SegmentReader, buffer: bytearray) -> list[Envelope]:
        if self._framed:
            for segment in segments.feed(data):
                buffer += segment.payload
        else:
            buffer += data
        return split_envelopes(buffer)

    def _client_envelope(self, envelope: Envelope) -> Envelope | None:
        """None to forward `envelope`, or the answer to send back instead."""
        if envelope.opcode == Opcode.STARTUP:
            self._version = envelope.version
            if self._topology is not None and startup_compression(envelope):
                self._topology.counts["compressed_connections_refused"] += 1
                return _protocol_error(
                    envelope, "astrachaos proxy: compression is not supported; connect without it"
                )
            if envelope.version >= 5 and startup_compression(envelope):
                # lz4 segments are not decoded here: relay this connection untouched.
                log.warning("v5 connection with compression: protocol faults are off for it")
                self._raw = True
            return None
        request = read_request(envelope, self._prepared.snapshot())
        if request is None:
            if self._topology is not None and envelope.flags & Flag.COMPRESSED:
                self._topology.counts["compressed_frames_not_followed"] += 1
            return None
        if request.opcode == Opcode.PREPARE:
            self._pending_prepare[request.stream] = request.statements[0].text or ""
            if self.capture is not None:
                self.capture.request(envelope, None, None)
            return None
        if self._topology is not None:
            table = system_table(request.statements[0].text if request.statements else None)
            if table is not None:
                self._system[request.stream] = table
        for policy in self._policies():
            decision = policy(request)
            if decision is None:
                continue
            if decision.action is Action.REPLY:
                answer = error_envelope(decision.error, request, envelope.version)
                if self.capture is not None:
                    refused = ERROR_CLASS_NAMES.get(decision.error, decision.error.value)
                    self.capture.request(envelope, decision.fault, refused)
                return answer
            if decision.action is Action.REPLACE:
                self._replace[request.stream] = (decision.error, request)
            else:
                self._drop.add(request.stream)
            if self.capture is not None:
                self.capture.request(envelope, decision.fault, None)
            return None
        if self.capture is not None:
            self.capture.request(envelope, None, None)
        return None

    def connection_closed(self) -> None:
        """The proxied connection closed (either side): writes in flight learn it."""
        if self.capture is not None:
            self.capture.closed()

    @property
    def mark(self) -> int:
        """The capture ledger number the client's next bytes must wait for (0: none)."""
        return 0 if self.capture is None else self.capture.mark

    def _server_envelope(self, envelope: Envelope) -> Envelope | None:
        """The envelope to pass to the client in place of `envelope` (None: swallow it)."""
        stream = envelope.stream
        if envelope.opcode in (Opcode.READY, Opcode.AUTHENTICATE) and self._version >= 5:
            self._framed = not self._raw
        topology = self._topology
        if topology is not None:
            if envelope.opcode == Opcode.SUPPORTED:
                return strip_compression(envelope)
            if envelope.opcode == Opcode.EVENT:
                rewritten = rewrite_event(envelope, topology.addresses)
                topology.counts["events_rewritten" if rewritten else "events_dropped"] += 1
                return rewritten
        if stream < 0 or envelope.opcode not in (Opcode.RESULT, Opcode.ERROR):
            return envelope
        table = self._system.pop(stream, None)
        if topology is not None and table is not None and envelope.opcode == Opcode.RESULT:
            result = rewrite_rows(envelope, table, topology.node, topology.addresses)
            topology.counts["peer_rows_dropped"] += result.dropped_rows
            topology.counts[f"{table}_rewritten" if result.readable else f"{table}_not_rewritten"] += 1
            envelope = result.envelope
        text = self._pending_prepare.pop(stream, None)
        if text is not None:
            prepared_id = prepared_id_of(envelope)
            if prepared_id is not None:
                self._prepared.learn(prepared_id, text)
        if stream in self._drop:
            self._drop.discard(stream)
            if self.capture is not None:
                self.capture.dropped(stream)
            return None
        replacement = self._replace.pop(stream, None)
        if replacement is not None:
            kind, request = replacement
            answer = error_envelope(kind, request, envelope.version)
            if self.capture is not None:
                self.capture.response(envelope, answer)
            return answer
        if self.capture is not None:
            self.capture.response(envelope, None)
        return envelope

    def _encode(self, envelopes: list[Envelope]) -> bytes:
        if not envelopes:
            return b""
        data = b"".join(e.encode() for e in envelopes)
        return encode_envelopes(data) if self._framed else data

    def _give_up(self, error: Exception, data: bytes) -> bytes:
        log.warning("cannot follow the CQL stream (%s): relaying this connection raw", error)
        if self._topology is not None:
            self._topology.counts["connections_not_followed"] += 1  # e.g. TLS: bytes pass, uncaptured
        self._raw = True
        return data


ERROR_CLASS_NAMES = {
    ErrorKind.OVERLOADED: "Overloaded",
    ErrorKind.WRITE_TIMEOUT: "WriteTimeout",
    ErrorKind.UNAVAILABLE: "Unavailable",
    ErrorKind.SERVER_ERROR: "ServerError",
    ErrorKind.IS_BOOTSTRAPPING: "IsBootstrapping",
}


def _protocol_error(envelope: Envelope, message: str) -> Envelope:
    text = message.encode()
    body = struct.pack(">iH", 0x000A, len(text)) + text
    return Envelope(envelope.version, True, 0, envelope.stream, Opcode.ERROR, body)
