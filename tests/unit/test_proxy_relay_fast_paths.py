"""The relay's fast paths give the same bytes and the same decisions as the full path.

v5 segments whose envelopes all pass unchanged are forwarded as received (no re-framing, no lz4
again); any change (a replaced answer, a rewritten system.local, an envelope split across
segments) re-frames what goes out. An EXECUTE with no policy in force is not decoded in full,
yet a prepared read of system.local is still rewritten. Requests sent to the node unread (no
policy in force) are recorded before any answer to them is read, or when the connection closes.
"""

from __future__ import annotations

import struct
from collections import Counter

import pytest

from astrachaos.proxy.cql import Envelope, Opcode, Request, split_envelopes
from astrachaos.proxy.error_frames import ErrorKind
from astrachaos.proxy.interception import (
    Action,
    CqlRelay,
    Decision,
    PreparedStatements,
    RequestPolicy,
    Topology,
)
from astrachaos.proxy.segments import SegmentReader, encode_segment
from astrachaos.proxy.topology import AddressMap


def _string(text: str) -> bytes:
    return struct.pack(">H", len(text)) + text.encode()


def _startup(compression: str | None) -> bytes:
    options = [("CQL_VERSION", "3.0.0")] + ([("COMPRESSION", compression)] if compression else [])
    body = struct.pack(">H", len(options)) + b"".join(_string(k) + _string(v) for k, v in options)
    return Envelope(5, False, 0, 0, Opcode.STARTUP, body).encode()


def _execute(stream: int, prepared_id: bytes = b"pid") -> Envelope:
    body = (struct.pack(">H", len(prepared_id)) + prepared_id + struct.pack(">H", 2) + b"md"
            + struct.pack(">H", 1) + struct.pack(">i", 0))  # fmt: skip
    return Envelope(5, False, 0, stream, Opcode.EXECUTE, body)


def _void(stream: int) -> Envelope:
    return Envelope(5, True, 0, stream, Opcode.RESULT, struct.pack(">i", 1))


def _framed_relay(
    compression: str | None,
    policies: list[RequestPolicy] | None = None,
    prepared: PreparedStatements | None = None,
) -> tuple[CqlRelay, Counter[str]]:
    counts: Counter[str] = Counter()
    topology = Topology(AddressMap({}), ("127.0.0.1", 9042), counts)
    relay = CqlRelay(prepared or PreparedStatements(), lambda: policies or [], topology=topology)
    relay.from_client(_startup(compression))
    relay.from_server(Envelope(5, True, 0, 0, Opcode.READY, b"").encode())
    assert relay.framed
    return relay, counts


def _envelopes(data: bytes, compressed: bool) -> list[Envelope]:
    payload = b"".join(s.payload for s in SegmentReader(compressed).feed(data))
    return split_envelopes(bytearray(payload))


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_unchanged_segments_pass_as_received_both_ways(compression: str | None) -> None:
    relay, _ = _framed_relay(compression)
    compressed = compression is not None
    requests = encode_segment(b"".join(_execute(s).encode() for s in range(1, 40)), compressed=compressed)
    answers = encode_segment(b"".join(_void(s).encode() for s in range(1, 40)), compressed=compressed)
    assert relay.from_client(requests) == (requests, b"")
    assert relay.from_server(answers) == answers


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_a_replaced_answer_reframes_the_segment_it_came_in(compression: str | None) -> None:
    decide = {2: Decision(Action.REPLACE, ErrorKind.WRITE_TIMEOUT)}
    relay, _ = _framed_relay(compression, [lambda request: decide.get(request.stream)])
    compressed = compression is not None
    requests = encode_segment(b"".join(_execute(s).encode() for s in (1, 2, 3)), compressed=compressed)
    upstream, answered = relay.from_client(requests)
    assert answered == b"" and [e.stream for e in _envelopes(upstream, compressed)] == [1, 2, 3]
    answers = encode_segment(b"".join(_void(s).encode() for s in (1, 2, 3)), compressed=compressed)
    out = relay.from_server(answers)
    assert out != answers
    assert [(e.stream, e.opcode) for e in _envelopes(out, compressed)] == [
        (1, Opcode.RESULT), (2, Opcode.ERROR), (3, Opcode.RESULT),
    ]  # fmt: skip


def test_a_refused_request_leaves_the_rest_of_its_segment_forwarded() -> None:
    relay, _ = _framed_relay(None, [lambda r: Decision(Action.REPLY) if r.stream == 5 else None])
    upstream, answered = relay.from_client(encode_segment(_execute(4).encode() + _execute(5).encode()))
    assert [e.stream for e in _envelopes(upstream, False)] == [4]
    assert [(e.stream, e.opcode) for e in _envelopes(answered, False)] == [(5, Opcode.ERROR)]


def test_an_envelope_split_across_segments_is_reframed_whole() -> None:
    relay, _ = _framed_relay(None)
    first, second = _execute(7).encode(), _execute(8).encode()
    cut = len(first) + 5
    data = first + second
    upstream, _ = relay.from_client(encode_segment(data[:cut], self_contained=False))
    assert [e.stream for e in _envelopes(upstream, False)] == [7]  # the whole one, framed again
    upstream, _ = relay.from_client(encode_segment(data[cut:], self_contained=False))
    assert [e.stream for e in _envelopes(upstream, False)] == [8]


def test_a_prepared_read_of_system_local_is_still_looked_at_without_policies() -> None:
    """No policy in force: the EXECUTE is not decoded in full, its prepared text still marks it."""
    prepared = PreparedStatements()
    prepared.learn(b"loc", "SELECT * FROM system.local WHERE key='local'")
    prepared.learn(b"pid", "INSERT INTO ks.t (k, v) VALUES (?, ?)")
    relay, counts = _framed_relay(None, prepared=prepared)
    relay.from_client(encode_segment(_execute(9, b"loc").encode() + _execute(10, b"pid").encode()))
    relay.from_server(encode_segment(_void(9).encode() + _void(10).encode()))
    assert counts["local_rewritten"] == 1  # the answer to stream 9 went through the rewriting (once)


def test_a_system_local_statement_learnt_after_its_first_execute_is_still_marked() -> None:
    """The system table of a prepared id is looked up once its text is known, not cached unknown."""
    prepared = PreparedStatements()
    relay, counts = _framed_relay(None, prepared=prepared)
    relay.from_client(encode_segment(_execute(9, b"loc").encode()))  # not learnt yet: unmarked
    relay.from_server(encode_segment(_void(9).encode()))
    assert counts["local_rewritten"] == 0
    prepared.learn(b"loc", "SELECT * FROM system.local WHERE key='local'")
    for stream in (11, 12):  # marked now, and every time
        relay.from_client(encode_segment(_execute(stream, b"loc").encode()))
        relay.from_server(encode_segment(_void(stream).encode()))
    assert counts["local_rewritten"] == 2


def test_policies_see_an_execute_with_its_prepared_text() -> None:
    prepared = PreparedStatements()
    prepared.learn(b"pid", "INSERT INTO ks.t (k, v) VALUES (?, ?)")
    seen: list[Request] = []
    relay, _ = _framed_relay(None, [lambda r: seen.append(r)], prepared=prepared)
    relay.from_client(encode_segment(_execute(3).encode()))
    assert [(r.stream, r.statements[0].table, r.prepared_ids) for r in seen] == [(3, "t", [b"pid"])]


class _Observer:
    """A capture that logs what it is told, in order; its mark counts the answers recorded."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int]] = []
        self.mark = 0
        self.toxics: list[bool] = []

    async def prepare(self, envelopes: object) -> None:
        return None

    def ready(self, envelopes: object) -> bool:
        return True

    def request(
        self, envelope: Envelope, fault: str | None, refused: str | None, *, toxics: bool = True
    ) -> None:
        self.log.append(("request", envelope.stream))
        self.toxics.append(toxics)

    def response(self, envelope: Envelope, replaced: Envelope | None) -> None:
        self.log.append(("answer", envelope.stream))
        self.mark += 1

    def dropped(self, stream: int) -> None:
        self.log.append(("dropped", stream))

    def closed(self) -> None:
        self.log.append(("closed", -1))

    def commit_through(self, number: int) -> None:
        return None


def _forwarded(streams: range) -> tuple[CqlRelay, _Observer]:
    """A framed relay whose client already sent EXECUTEs on `streams` unread (`passes_unread`)."""
    observer = _Observer()
    relay = CqlRelay(PreparedStatements(), lambda: [], capture=observer)
    relay.from_client(_startup(None))
    relay.from_server(Envelope(5, True, 0, 0, Opcode.READY, b"").encode())
    assert relay.passes_unread()
    read = relay.read_client(encode_segment(b"".join(_execute(s).encode() for s in streams)))
    assert isinstance(read, list) and relay.ready(read)
    relay.forwarded(read)
    assert not any(kind == "request" for kind, _ in observer.log)  # recorded later, not yet
    return relay, observer


def test_a_request_sent_unread_is_recorded_before_its_answer_is_read() -> None:
    relay, observer = _forwarded(range(1, 6))
    assert observer.log == []  # recorded later, a few at a time or when answered
    relay.from_server(encode_segment(_void(3).encode()))
    assert observer.log == [("request", 1), ("request", 2), ("request", 3), ("answer", 3)]
    assert relay.record_forwarded(1)  # one more; some remain
    assert not relay.record_forwarded()
    relay.from_server(encode_segment(_void(5).encode()))
    assert observer.log[4:] == [("request", 4), ("request", 5), ("answer", 5)]
    assert observer.toxics == [False] * 5  # forwarded with no toxic in force: none is named


def test_requests_sent_unread_are_recorded_when_the_connection_closes_first() -> None:
    relay, observer = _forwarded(range(1, 3))
    relay.connection_closed()
    assert observer.log == [("request", 1), ("request", 2), ("closed", -1)]
