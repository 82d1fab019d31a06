"""CQL framing: v5 segment CRCs and layout, envelopes, request decoding, ERROR frames the driver reads."""

from __future__ import annotations

import io
import struct

import pytest
from cassandra import segment as driver_segment
from cassandra.protocol import ProtocolHandler, UnavailableErrorMessage, WriteTimeoutErrorMessage

from astrachaos.proxy.cql import Envelope, Opcode, prepared_id_of, read_request, split_envelopes
from astrachaos.proxy.error_frames import ErrorKind, error_envelope
from astrachaos.proxy.interception import Action, CqlRelay, Decision, PreparedStatements
from astrachaos.proxy.segments import (
    MAX_PAYLOAD,
    SegmentError,
    SegmentReader,
    crc24_of_bytes,
    crc32,
    encode_envelopes,
    encode_segment,
)


def _long_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">i", len(data)) + data


def _query(stream: int, text: str, version: int = 5, consistency: int = 1) -> Envelope:
    flags = struct.pack(">i", 0) if version >= 5 else b"\x00"
    body = _long_string(text) + struct.pack(">H", consistency) + flags
    return Envelope(version, False, 0, stream, Opcode.QUERY, body)


def test_crc24_and_crc32_match_the_published_check_values() -> None:
    # Check values for "123456789" with Cassandra's parameters (init 0x875060, poly 0x1974F0B;
    # CRC32 primed with FA 2D 55 CA), as published alongside other drivers' segment codecs.
    assert crc24_of_bytes(b"123456789") == 0x4B3F02
    assert crc32(b"123456789") == 0xE2A261A7


def test_segment_layout_matches_a_reference_segment() -> None:
    payload = bytes(ord("a") + i % 26 for i in range(50))
    framed = encode_segment(payload)
    assert len(framed) == 6 + 50 + 4
    assert framed[:6] == bytes([0x32, 0x00, 0x02, 0xA5, 0xFF, 0xEE])  # length 50, self-contained
    assert framed[-4:] == bytes([0x13, 0xBD, 0x8C, 0x4F])


@pytest.mark.parametrize("size", [0, 1, 9, 300, 70_000, MAX_PAYLOAD])
def test_segments_agree_with_the_driver_codec(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    framed = encode_segment(payload)
    header = int.from_bytes(framed[:3], "little")
    assert driver_segment.compute_crc24(header, 3) == int.from_bytes(framed[3:6], "little")
    assert (
        driver_segment.compute_crc32(payload, driver_segment.CRC32_INITIAL)
        == struct.unpack("<I", framed[-4:])[0]
    )
    codec, buffer = driver_segment.SegmentCodec(), io.BytesIO(framed)
    decoded = codec.decode(buffer, codec.decode_header(buffer))
    assert decoded.payload == payload and decoded.is_self_contained


def test_segment_reader_takes_bytes_in_any_pieces() -> None:
    stream = encode_segment(b"first") + encode_segment(b"second", self_contained=False)
    reader = SegmentReader()
    segments = [s for i in range(len(stream)) for s in reader.feed(stream[i : i + 1])]
    assert [(s.payload, s.self_contained) for s in segments] == [(b"first", True), (b"second", False)]


def test_a_corrupt_segment_is_refused() -> None:
    framed = bytearray(encode_segment(b"payload"))
    framed[8] ^= 0xFF
    with pytest.raises(SegmentError, match="CRC32"):
        SegmentReader().feed(bytes(framed))
    framed = bytearray(encode_segment(b"payload"))
    framed[0] ^= 0x01
    with pytest.raises(SegmentError, match="CRC24"):
        SegmentReader().feed(bytes(framed))


def test_a_large_envelope_run_is_split_into_non_self_contained_segments() -> None:
    data = bytes(200_000)
    reader = SegmentReader()
    segments = reader.feed(encode_envelopes(data))
    assert len(segments) == 2 and not any(s.self_contained for s in segments)
    assert b"".join(s.payload for s in segments) == data


def test_envelopes_round_trip_and_split_at_their_boundaries() -> None:
    envelopes = [_query(7, "SELECT * FROM ks.t"), _query(8, "INSERT INTO ks.t (k) VALUES (1)", 4)]
    buffer = bytearray(b"".join(e.encode() for e in envelopes) + b"\x05\x00")
    assert split_envelopes(buffer) == envelopes
    assert buffer == bytearray(b"\x05\x00")  # the partial header stays


def test_query_is_read_with_its_keyspace_table_and_consistency() -> None:
    request = read_request(_query(3, 'INSERT INTO Shop."Orders" (k) VALUES (1)', consistency=4), {})
    assert request is not None
    assert (request.stream, request.consistency) == (3, 4)
    assert (request.statements[0].keyspace, request.statements[0].table) == ("shop", "Orders")


@pytest.mark.parametrize("version", [4, 5])
def test_execute_is_mapped_to_its_prepared_text(version: int) -> None:
    prepared_id = b"\x01\x02\x03"
    body = struct.pack(">H", 3) + prepared_id
    if version >= 5:
        body += struct.pack(">H", 2) + b"md"
    body += struct.pack(">H", 6)
    envelope = Envelope(version, False, 0, 9, Opcode.EXECUTE, body)
    request = read_request(envelope, {prepared_id: "UPDATE ks.t SET v = ? WHERE k = ?"})
    assert request is not None and request.consistency == 6
    assert request.statements[0].table == "t" and request.prepared_ids == [prepared_id]


def test_batch_statements_are_all_read() -> None:
    body = b"\x01" + struct.pack(">H", 2)
    body += b"\x00" + _long_string("INSERT INTO ks.a (k) VALUES (?)") + struct.pack(">H", 1)
    body += struct.pack(">i", 4) + b"\x00\x00\x00\x01"
    body += b"\x01" + struct.pack(">H", 2) + b"id" + struct.pack(">H", 0)
    body += struct.pack(">H", 5) + struct.pack(">i", 0)
    request = read_request(
        Envelope(5, False, 0, 1, Opcode.BATCH, body), {b"id": "DELETE FROM ks.b WHERE k=1"}
    )
    assert request is not None and request.batch_type == "UNLOGGED" and request.consistency == 5
    assert [s.table for s in request.statements] == ["a", "b"]


def test_result_prepared_gives_its_id() -> None:
    body = struct.pack(">i", 4) + struct.pack(">H", 2) + b"\xab\xcd" + b"rest"
    assert prepared_id_of(Envelope(5, True, 0, 1, Opcode.RESULT, body)) == b"\xab\xcd"


def _driver_reads(envelope: Envelope) -> object:
    frame = envelope.encode()
    return ProtocolHandler.decode_message(
        envelope.version, {}, envelope.stream, frame[1], frame[4], frame[9:], None, None
    )


@pytest.mark.parametrize("version", [4, 5])
def test_write_timeout_frame_is_read_by_the_driver(version: int) -> None:
    request = read_request(_query(12, "INSERT INTO ks.t (k) VALUES (1)", version, consistency=4), {})
    assert request is not None
    envelope = error_envelope(ErrorKind.WRITE_TIMEOUT, request, version)
    assert envelope.encode()[0] == 0x80 | version and envelope.stream == 12
    message = _driver_reads(envelope)
    assert isinstance(message, WriteTimeoutErrorMessage)
    assert message.info["required_responses"] == 2 and message.info["received_responses"] == 0


def test_unavailable_and_simple_errors_are_read_by_the_driver() -> None:
    request = read_request(_query(1, "INSERT INTO ks.t (k) VALUES (1)"), {})
    assert request is not None
    message = _driver_reads(error_envelope(ErrorKind.UNAVAILABLE, request, 5))
    assert isinstance(message, UnavailableErrorMessage)
    assert (message.info["required_replicas"], message.info["alive_replicas"]) == (1, 0)
    for kind, code in [
        (ErrorKind.OVERLOADED, 0x1001),
        (ErrorKind.SERVER_ERROR, 0x0000),
        (ErrorKind.IS_BOOTSTRAPPING, 0x1002),
    ]:
        assert _driver_reads(error_envelope(kind, request, 5)).code == code  # type: ignore[attr-defined]


def _ready_relay(decide: Decision | None) -> CqlRelay:
    relay = CqlRelay(PreparedStatements(), lambda: [lambda request: decide])
    startup = Envelope(5, False, 0, 0, Opcode.STARTUP, struct.pack(">H", 0))
    assert relay.from_client(startup.encode()) == (startup.encode(), b"")
    ready = Envelope(5, True, 0, 0, Opcode.READY, b"")
    assert relay.from_server(ready.encode()) == ready.encode()  # READY itself is unframed
    assert relay.framed
    return relay


def test_relay_answers_a_v5_request_with_a_framed_error_and_forwards_nothing() -> None:
    relay = _ready_relay(Decision(Action.REPLY, ErrorKind.OVERLOADED))
    upstream, answer = relay.from_client(
        encode_segment(_query(5, "INSERT INTO ks.t (k) VALUES (1)").encode())
    )
    assert upstream == b""
    (segment,) = SegmentReader().feed(answer)
    (envelope,) = split_envelopes(bytearray(segment.payload))
    assert (envelope.is_response, envelope.stream, envelope.opcode) == (True, 5, Opcode.ERROR)


def test_relay_drops_the_answer_of_a_forwarded_request() -> None:
    relay = _ready_relay(Decision(Action.DROP))
    query = encode_segment(_query(6, "INSERT INTO ks.t (k) VALUES (1)").encode())
    assert relay.from_client(query) == (query, b"")
    void = Envelope(5, True, 0, 6, Opcode.RESULT, struct.pack(">i", 1))
    event = Envelope(5, True, 0, -1, Opcode.EVENT, b"x")
    (segment,) = SegmentReader().feed(relay.from_server(encode_segment(void.encode() + event.encode())))
    assert split_envelopes(bytearray(segment.payload)) == [event]
