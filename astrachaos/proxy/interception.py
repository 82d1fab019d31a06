"""CQL-aware relaying of one proxied connection: follow the framing, let policies answer requests.

Both directions are cut into envelopes (unframed before the STARTUP handshake and for v4;
inside v5 segments after READY/AUTHENTICATE). Each QUERY/EXECUTE/BATCH is offered to the
active request policies, which may answer it with an ERROR without forwarding, or forward it
and then replace or drop the server's answer. Whatever is forwarded is framed again.
Compressed connections are read too: lz4/snappy envelope bodies (v4) are inflated and
compressed again on the way out, lz4 segments (v5) likewise (`compression.py`).
A stream this relay cannot follow (a CRC it cannot verify, not CQL at all such as TLS) is passed
through raw and counted. A standalone proxy (`topology` given) offers only the compressions it
reads in SUPPORTED and refuses any other with a ProtocolError, so no connection escapes the
address rewriting or the capture.
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

from astrachaos.proxy.compression import (
    BodyCodec,
    CompressionError,
    available,
    body_codec,
    segment_codec_available,
)
from astrachaos.proxy.cql import (
    Envelope,
    Flag,
    FrameError,
    Opcode,
    Request,
    execute_prepared_id,
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

    async def prepare(self, envelopes: Sequence[Envelope]) -> None: ...

    def request(
        self, envelope: Envelope, fault: str | None, refused: str | None, *, toxics: bool = True
    ) -> None: ...  # toxics=False: it was forwarded when no toxic was in force

    def response(self, envelope: Envelope, replaced: Envelope | None) -> None: ...

    def dropped(self, stream: int) -> None: ...

    def closed(self) -> None: ...

    def commit_through(self, number: int) -> None: ...  # on the caller's thread, if not committed yet

    def ready(self, envelopes: Sequence[Envelope]) -> bool: ...  # `request` needs nothing `prepare` awaits


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
        self._system: dict[bytes, str | None] = {}  # prepared id → the system table it reads, if any
        self._lock = threading.Lock()

    def learn(self, prepared_id: bytes, text: str) -> None:
        """Remember the text a prepared id stands for."""
        with self._lock:  # copy on write: a snapshot handed out is never changed
            if self._texts.get(prepared_id) != text:
                self._texts = {**self._texts, prepared_id: text}

    def snapshot(self) -> dict[bytes, str]:
        """The texts as of now, to read without the lock (never changed afterwards)."""
        return self._texts

    def system_table(self, prepared_id: bytes) -> str | None:
        """`system_table` of the statement `prepared_id` stands for (looked at once per id)."""
        try:
            return self._system[prepared_id]
        except KeyError:
            text = self._texts.get(prepared_id)
            table = system_table(text)
            if text is not None:  # an id's text never changes once learnt
                self._system[prepared_id] = table
            return table


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
        self._codec: BodyCodec | None = None  # v4: how envelope bodies are compressed
        self._lz4_segments = False  # v5: segments are lz4-compressed once framing starts
        self._client_segments = SegmentReader()
        self._server_segments = SegmentReader()
        self._client_buffer = bytearray()
        self._server_buffer = bytearray()
        # The segments just read, as received, when they held exactly the envelopes cut from them:
        # forwarded as they are if every envelope passes unchanged (no re-framing, no lz4 again).
        self._client_verbatim: bytes | None = None
        self._whole_segments = False
        self._pending_prepare: dict[int, str] = {}
        self._replace: dict[int, tuple[ErrorKind, Request]] = {}
        self._drop: set[int] = set()
        # Envelopes forwarded before they were looked at (`passes_unread`), in arrival order, and the
        # position of each stream among them (counted from the first ever): each is recorded before
        # an answer to it or to a later one is read, and meanwhile a few at a time between reads.
        self._unrecorded: list[Envelope] = []
        self._unrecorded_first = 0
        self._unrecorded_at: dict[int, int] = {}

    @property
    def framed(self) -> bool:
        """Whether v5 segment framing is in force."""
        return self._framed

    def from_client(self, data: bytes) -> tuple[bytes, bytes]:
        """Client bytes in; (bytes for the server, bytes answered to the client) out."""
        read = self.read_client(data)
        return (read, b"") if isinstance(read, bytes) else self.answer_client(read)

    def read_client(self, data: bytes) -> list[Envelope] | bytes:
        """Client bytes cut into whole envelopes, or bytes to relay as they are (a raw stream)."""
        if self._raw:
            return data
        try:
            envelopes = self._envelopes(data, self._client_segments, self._client_buffer)
        except (FrameError, SegmentError) as error:
            return self._give_up(error, data)
        self._client_verbatim = self._verbatim(self._client_segments, self._client_buffer, envelopes)
        return envelopes

    def _verbatim(
        self, segments: SegmentReader, buffer: bytearray, envelopes: list[Envelope]
    ) -> bytes | None:
        """The segments `envelopes` came in, when they hold exactly those (framed, nothing left over)."""
        if not self._framed or buffer or not envelopes or not segments.last_raw:
            return None
        return segments.last_raw if self._whole_segments else None

    def passes_unread(self) -> bool:
        """Whether client bytes may go to the server before they are read: v5 framing is in force
        (the handshake is over, nothing left for the relay to answer or change) and no policy is.
        The caller sends them, then reads them (`read_client`), waits for what recording them
        needs if not `ready` (holding the server's answers meanwhile), and hands them to
        `forwarded`."""
        return self._framed and not self._raw and not self._policies()

    def ready(self, envelopes: Sequence[Envelope]) -> bool:
        """Whether recording `envelopes` needs nothing `prepare` would wait for."""
        return self.capture is None or self.capture.ready(envelopes)

    def record_forwarded(self, count: int | None = None) -> bool:
        """Record the first `count` (all: None) envelopes forwarded unrecorded; whether some remain."""
        pending = self._unrecorded
        if not pending:
            return False
        taken = pending if count is None or count >= len(pending) else pending[:count]
        self._unrecorded = [] if taken is pending else pending[len(taken) :]
        self._unrecorded_first += len(taken)
        at = self._unrecorded_at
        for envelope in taken:
            at.pop(envelope.stream, None)
            self._client_envelope(envelope, (), toxics=False)  # no policy: never an answer of its own
        return bool(self._unrecorded)

    def _record_answered(self, envelopes: Sequence[Envelope]) -> None:
        """Before answers are read: record the forwarded envelopes up to the last one they answer."""
        at = self._unrecorded_at
        through = max((at.get(e.stream, -1) for e in envelopes), default=-1)
        if through >= 0:
            self.record_forwarded(through - self._unrecorded_first + 1)

    async def prepare(self, envelopes: Sequence[Envelope]) -> None:
        """Wait, without blocking the loop, for what recording `envelopes` needs (a table's schema)."""
        if self.capture is not None:
            await self.capture.prepare(envelopes)

    def forwarded(self, envelopes: Sequence[Envelope]) -> None:
        """Client envelopes the caller sent already (`passes_unread`): recorded later
        (`record_forwarded`, and before any answer to them is read), with no policy offered them
        (one added since cannot act on them)."""
        for envelope in envelopes:
            self._unrecorded_at[envelope.stream] = self._unrecorded_first + len(self._unrecorded)
            self._unrecorded.append(envelope)
        self._client_verbatim = None

    def answer_client(self, envelopes: Sequence[Envelope]) -> tuple[bytes, bytes]:
        """Client envelopes in; (bytes for the server, bytes answered to the client) out."""
        self.record_forwarded()  # in order: what came first is recorded first
        upstream: list[Envelope] = []
        answers: list[Envelope] = []
        policies = self._policies()
        for envelope in envelopes:
            answer = self._client_envelope(envelope, policies)
            (upstream if answer is None else answers).append(answer or envelope)
        verbatim, self._client_verbatim = self._client_verbatim, None
        if verbatim is not None and not answers and _same(upstream, envelopes):
            return verbatim, b""
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
                    envelopes = [self._inflate(e) for e in split_envelopes(self._server_buffer, limit=1)]
                data = b""
                if self._unrecorded:
                    self._record_answered(envelopes)
                kept = [e for e in (self._server_envelope(e) for e in envelopes) if e is not None]
                if framed_before:
                    verbatim = self._verbatim(self._server_segments, self._server_buffer, envelopes)
                    out.append(
                        verbatim if verbatim is not None and _same(kept, envelopes) else self._encode(kept)
                    )
                else:
                    out.append(b"".join(self._wire(e) for e in kept))
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
            self._whole_segments = not buffer  # no envelope began in an earlier segment
            for segment in segments.feed(data):
                buffer += segment.payload
        else:
            buffer += data
        return [self._inflate(e) for e in split_envelopes(buffer)]

    def _inflate(self, envelope: Envelope) -> Envelope:
        """`envelope` with its body decompressed (marked to be compressed again on the way out)."""
        if not envelope.flags & Flag.COMPRESSED:
            return envelope
        if self._framed:  # v5 compresses segments; the flag the Java driver still sets is meaningless
            return envelope._replace(flags=envelope.flags & ~Flag.COMPRESSED, compressed=True)
        if self._codec is None:
            self._count("compressed_frames_not_followed")
            return envelope
        try:
            body = self._codec.decompress(envelope.body)
        except CompressionError as error:
            log.warning("cannot inflate a frame: %s", error)
            self._count("compressed_frames_not_followed")
            return envelope
        return envelope._replace(flags=envelope.flags & ~Flag.COMPRESSED, body=body, compressed=True)

    def _wire(self, envelope: Envelope) -> bytes:
        """The envelope's bytes, flagged (and its body compressed again, v4) if it arrived so."""
        if envelope.compressed:
            body = envelope.body if self._codec is None else self._codec.compress(envelope.body)
            envelope = envelope._replace(flags=envelope.flags | Flag.COMPRESSED, body=body, compressed=False)
        return envelope.encode()

    def _answer(self, envelope: Envelope) -> Envelope:
        """An answer of the proxy's own, compressed as the server's are on this connection."""
        return envelope._replace(compressed=self._codec is not None)

    def _count(self, what: str) -> None:
        if self._topology is not None:
            self._topology.counts[what] += 1

    def _client_envelope(
        self, envelope: Envelope, policies: Sequence[RequestPolicy], toxics: bool = True
    ) -> Envelope | None:
        """None to forward `envelope`, or the answer to send back instead.

        `toxics`: whether a toxic may have been in force when it was forwarded (False: it was not).
        """
        if envelope.opcode == Opcode.STARTUP:
            return self._startup(envelope)
        if not policies and envelope.opcode == Opcode.EXECUTE:
            prepared_id = execute_prepared_id(envelope)
            if prepared_id is not None:  # the hot path: no policy to decide, only its text to look at
                self._forward_execute(envelope, prepared_id, toxics)
                return None
        request = read_request(envelope, self._prepared.snapshot())
        if request is None:
            return None
        if request.opcode == Opcode.PREPARE:
            self._pending_prepare[request.stream] = request.statements[0].text or ""
            if self.capture is not None:
                self.capture.request(envelope, None, None, toxics=toxics)
            return None
        if self._topology is not None:
            table = system_table(request.statements[0].text if request.statements else None)
            if table is not None:
                self._system[request.stream] = table
        for policy in policies:
            decision = policy(request)
            if decision is None:
                continue
            if decision.action is Action.REPLY:
                answer = self._answer(error_envelope(decision.error, request, envelope.version))
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
            self.capture.request(envelope, None, None, toxics=toxics)
        return None

    def _forward_execute(self, envelope: Envelope, prepared_id: bytes, toxics: bool) -> None:
        """An EXECUTE no policy looks at: note a read of system.local/peers, capture it."""
        if self._topology is not None:
            table = self._prepared.system_table(prepared_id)
            if table is not None:
                self._system[envelope.stream] = table
        if self.capture is not None:
            self.capture.request(envelope, None, None, toxics=toxics)

    def _startup(self, envelope: Envelope) -> Envelope | None:
        """Learn the version and compression; refuse a compression this relay cannot read."""
        self._version = envelope.version
        name = startup_compression(envelope)
        if not name:
            return None
        if envelope.version >= 5:
            readable = segment_codec_available(name)
        else:
            self._codec = body_codec(name)
            readable = self._codec is not None
        if readable:
            self._lz4_segments = envelope.version >= 5
            self._count(f"compressed_connections_{name.lower()}")
            return None
        if self._topology is not None:
            self._count("compressed_connections_refused")
            return _protocol_error(
                envelope, f"astrachaos proxy: cannot read {name} compression here; offered: {available()}"
            )
        log.warning("%s compression the proxy cannot read: protocol faults are off for it", name)
        self._raw = True  # relay the connection untouched
        return None

    def connection_closed(self) -> None:
        """The proxied connection closed (either side): writes in flight learn it."""
        self.record_forwarded()
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
            self._client_segments.compressed = self._server_segments.compressed = self._lz4_segments
        topology = self._topology
        if topology is not None:
            if envelope.opcode == Opcode.SUPPORTED:
                return strip_compression(envelope, available())
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
            answer = self._answer(error_envelope(kind, request, envelope.version))
            if self.capture is not None:
                self.capture.response(envelope, answer)
            return answer
        if self.capture is not None:
            self.capture.response(envelope, None)
        return envelope

    def _encode(self, envelopes: list[Envelope]) -> bytes:
        if not envelopes:
            return b""
        data = b"".join(self._wire(e) for e in envelopes)
        return encode_envelopes(data, self._lz4_segments) if self._framed else data

    def _give_up(self, error: Exception, data: bytes) -> bytes:
        self.record_forwarded()  # their answers will not be read
        tls = data[:1] == b"\x16"  # a TLS handshake record
        log.warning("cannot follow the CQL stream (%s): relaying this connection raw%s", error,
                    " (a TLS client: run the proxy with --tcp)" if tls else "")  # fmt: skip
        self._count("connections_not_followed")  # e.g. TLS: bytes pass, uncaptured
        self._raw = True
        return data


ERROR_CLASS_NAMES = {
    ErrorKind.OVERLOADED: "Overloaded",
    ErrorKind.WRITE_TIMEOUT: "WriteTimeout",
    ErrorKind.UNAVAILABLE: "Unavailable",
    ErrorKind.SERVER_ERROR: "ServerError",
    ErrorKind.IS_BOOTSTRAPPING: "IsBootstrapping",
}


def _same(out: Sequence[Envelope], read: Sequence[Envelope]) -> bool:
    """Whether the envelopes going out are the very ones read (none changed, dropped or added)."""
    return len(out) == len(read) and all(a is b for a, b in zip(out, read, strict=True))


def _protocol_error(envelope: Envelope, message: str) -> Envelope:
    text = message.encode()
    body = struct.pack(">iH", 0x000A, len(text)) + text
    return Envelope(envelope.version, True, 0, envelope.stream, Opcode.ERROR, body)
