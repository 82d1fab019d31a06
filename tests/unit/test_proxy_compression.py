"""Compressed CQL traffic through the relay: lz4/snappy bodies (v4) and lz4 segments (v5), checked
against the Python driver's own codecs (the lz4 and python-snappy packages, not the proxy's cramjam)."""

from __future__ import annotations

import io
import struct
from collections import Counter

import pytest
from cassandra import connection as driver_connection
from cassandra import segment as driver_segment

from astrachaos.proxy.cql import Envelope, Flag, Opcode, Request, split_envelopes
from astrachaos.proxy.error_frames import ErrorKind
from astrachaos.proxy.interception import Action, CqlRelay, Decision, PreparedStatements, Topology
from astrachaos.proxy.segments import SegmentReader, encode_segment
from astrachaos.proxy.topology import AddressMap

DRIVER_CODECS = driver_connection.locally_supported_compressions
INSERT = "INSERT INTO ks.t (k, v) VALUES (1, '" + "x" * 300 + "')"  # long enough for lz4 to shrink it


def _string(text: str) -> bytes:
    return struct.pack(">H", len(text)) + text.encode()


def _startup(version: int, compression: str | None) -> Envelope:
    options = [("CQL_VERSION", "3.0.0")] + ([("COMPRESSION", compression)] if compression else [])
    body = struct.pack(">H", len(options)) + b"".join(_string(k) + _string(v) for k, v in options)
    return Envelope(version, False, 0, 0, Opcode.STARTUP, body)


def _query(stream: int, version: int) -> Envelope:
    flags = struct.pack(">i", 0) if version >= 5 else b"\x00"
    body = struct.pack(">i", len(INSERT)) + INSERT.encode() + struct.pack(">H", 1) + flags
    return Envelope(version, False, 0, stream, Opcode.QUERY, body)


def _relay(decision: Decision | None = None, counts: Counter[str] | None = None) -> CqlRelay:
    topology = Topology(AddressMap({}), ("127.0.0.1", 9042), counts if counts is not None else Counter())
    return CqlRelay(PreparedStatements(), lambda: [lambda request: decision], topology=topology)


def _v4_compressed(envelope: Envelope, name: str) -> bytes:
    compress, _ = DRIVER_CODECS[name]
    body = compress(envelope.body)
    return Envelope(envelope.version, envelope.is_response, envelope.flags | Flag.COMPRESSED,
                    envelope.stream, envelope.opcode, body).encode()  # fmt: skip


@pytest.mark.parametrize("name", ["lz4", "snappy"])
def test_a_v4_compressed_write_is_read_and_answered_compressed(name: str) -> None:
    counts: Counter[str] = Counter()
    relay = _relay(Decision(Action.REPLY, ErrorKind.OVERLOADED), counts)
    startup = _startup(4, name).encode()
    assert relay.from_client(startup) == (startup, b"")
    upstream, answer = relay.from_client(_v4_compressed(_query(3, 4), name))
    assert upstream == b""  # the policy saw the inflated INSERT and answered it
    (error,) = split_envelopes(bytearray(answer))
    assert error.flags & Flag.COMPRESSED and error.opcode == Opcode.ERROR and error.stream == 3
    _, decompress = DRIVER_CODECS[name]
    assert struct.unpack(">i", decompress(error.body)[:4])[0] == 0x1001  # Overloaded, as the driver reads it
    assert counts[f"compressed_connections_{name}"] == 1 and counts["compressed_frames_not_followed"] == 0


def test_a_forwarded_v4_lz4_frame_is_recompressed_to_the_same_content() -> None:
    relay = _relay()
    relay.from_client(_startup(4, "lz4").encode())
    upstream, _ = relay.from_client(_v4_compressed(_query(5, 4), "lz4"))
    (sent,) = split_envelopes(bytearray(upstream))
    _, decompress = DRIVER_CODECS["lz4"]
    assert sent.flags & Flag.COMPRESSED and decompress(sent.body) == _query(5, 4).body
    result = Envelope(4, True, 0, 5, Opcode.RESULT, struct.pack(">i", 1))
    (back,) = split_envelopes(bytearray(relay.from_server(_v4_compressed(result, "lz4"))))
    assert back.flags & Flag.COMPRESSED and decompress(back.body) == result.body


def _driver_lz4_segments() -> driver_segment.SegmentCodec:
    assert driver_connection.segment_codec_lz4 is not None, "the lz4 package is a dev dependency"
    return driver_connection.segment_codec_lz4


def test_v5_lz4_segments_agree_with_the_driver_codec_both_ways() -> None:
    codec = _driver_lz4_segments()
    for payload in [_query(9, 5).encode(), b"tiny", bytes(range(256)) * 40]:
        ours = encode_segment(payload, True, compressed=True)
        buffer = io.BytesIO(ours)
        header = codec.decode_header(buffer)
        assert codec.decode(buffer, header).payload == payload and header.is_self_contained
        theirs = io.BytesIO()
        codec.encode(theirs, payload)
        (segment,) = SegmentReader(compressed=True).feed(theirs.getvalue())
        assert segment.payload == payload and segment.self_contained


def test_a_v5_lz4_connection_is_followed_after_ready() -> None:
    counts: Counter[str] = Counter()
    relay = _relay(Decision(Action.REPLY, ErrorKind.WRITE_TIMEOUT), counts)
    relay.from_client(_startup(5, "lz4").encode())
    ready = Envelope(5, True, 0, 0, Opcode.READY, b"")
    assert relay.from_server(ready.encode()) == ready.encode()
    codec = _driver_lz4_segments()
    segment = io.BytesIO()
    codec.encode(segment, _query(11, 5).encode())
    upstream, answer = relay.from_client(segment.getvalue())
    assert upstream == b""
    buffer = io.BytesIO(answer)
    payload = codec.decode(buffer, codec.decode_header(buffer)).payload
    (error,) = split_envelopes(bytearray(payload))
    assert (error.stream, error.opcode) == (11, Opcode.ERROR)
    assert counts["compressed_connections_lz4"] == 1 and counts["connections_not_followed"] == 0


def test_a_compression_the_proxy_cannot_read_is_refused_and_counted() -> None:
    counts: Counter[str] = Counter()
    relay = _relay(counts=counts)
    upstream, answer = relay.from_client(_startup(5, "snappy").encode())  # v5 has lz4 segments only
    assert upstream == b""
    (error,) = split_envelopes(bytearray(answer))
    assert error.opcode == Opcode.ERROR and struct.unpack(">i", error.body[:4])[0] == 0x000A
    assert counts["compressed_connections_refused"] == 1


def test_a_frame_that_does_not_inflate_is_counted_not_followed() -> None:
    counts: Counter[str] = Counter()
    relay = _relay(counts=counts)
    relay.from_client(_startup(4, "lz4").encode())
    garbage = Envelope(
        4, False, Flag.COMPRESSED, 2, Opcode.QUERY, b"\x00\x00\x01\x00\x1fA\xff\xff"
    )  # offset past the start
    assert relay.from_client(garbage.encode()) == (garbage.encode(), b"")  # passed on untouched
    assert counts["compressed_frames_not_followed"] == 1


def test_an_empty_lz4_body_round_trips_as_the_driver_writes_it() -> None:
    """READY has an empty body: the driver's lz4 needs the one-byte empty block, not just the length."""
    from astrachaos.proxy.compression import BodyCodec

    compress, decompress = DRIVER_CODECS["lz4"]
    codec = BodyCodec("lz4")
    assert decompress(codec.compress(b"")) == b"" and codec.decompress(compress(b"")) == b""


def test_a_v5_envelope_flagged_compressed_inside_lz4_segments_is_read_and_keeps_its_flag() -> None:
    """The Java driver sets COMPRESSED on v5 envelopes whose bodies are plain (the segment is compressed)."""
    counts: Counter[str] = Counter()
    seen: list[Request] = []
    topology = Topology(AddressMap({}), ("127.0.0.1", 9042), counts)
    relay = CqlRelay(PreparedStatements(), lambda: [lambda r: seen.append(r)], topology=topology)
    relay.from_client(_startup(5, "lz4").encode())
    relay.from_server(Envelope(5, True, 0, 0, Opcode.READY, b"").encode())
    query = _query(12, 5)
    flagged = Envelope(5, False, Flag.COMPRESSED, 12, Opcode.QUERY, query.body)
    upstream, _ = relay.from_client(encode_segment(flagged.encode(), compressed=True))
    (segment,) = SegmentReader(compressed=True).feed(upstream)
    assert split_envelopes(bytearray(segment.payload)) == [flagged]
    assert counts["compressed_frames_not_followed"] == 0
    assert [(r.stream, r.statements[0].table) for r in seen] == [(12, "t")]  # the policies read it
