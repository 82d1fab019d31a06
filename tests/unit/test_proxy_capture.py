"""The proxy's CQL reading for capture and topology: marker columns, bound values, peer rewriting."""

from __future__ import annotations

import ipaddress
import struct

from astrachaos.proxy.bound import UNSET, read_bound
from astrachaos.proxy.cql import BodyReader, Envelope, Opcode
from astrachaos.proxy.statements import Kind, shape_of
from astrachaos.proxy.topology import AddressMap, rewrite_event, rewrite_rows, strip_compression
from astrachaos.standalone.service import listen_addresses


def _string(text: str) -> bytes:
    return struct.pack(">H", len(text)) + text.encode()


def _value(data: bytes | None) -> bytes:
    return struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data


def test_insert_markers_map_to_columns_and_literals_are_named() -> None:
    shape = shape_of('INSERT INTO ks.t (a, b, "C") VALUES (?, 5, ?) USING TIMESTAMP ?')
    assert shape.kind is Kind.INSERT
    assert shape.markers == ["a", "C", "[timestamp]"]
    assert shape.literal == {"b"}


def test_update_and_delete_markers_follow_the_text() -> None:
    assert shape_of("UPDATE t USING TTL ? SET v = ?, w = ? WHERE k = ? AND c = ?").markers == [
        "[ttl]", "v", "w", "k", "c",
    ]  # fmt: skip
    delete = shape_of("DELETE FROM t WHERE k = ? AND c = 'x'")
    assert delete.markers == ["k"] and delete.literal == {"c"}
    assert shape_of("DELETE v FROM t WHERE k = ?").column_delete
    assert shape_of("UPDATE t SET l = l + ? WHERE k = ?").arithmetic
    assert shape_of("INSERT INTO t (k) VALUES (?) IF NOT EXISTS").conditional
    assert shape_of("UPDATE t SET v = ? WHERE k IN ?").markers is None


def test_execute_v5_values_unset_and_timestamp_are_read() -> None:
    flags = 0x01 | 0x20
    body = (
        struct.pack(">H", 2) + b"id" + struct.pack(">H", 1) + b"m" + struct.pack(">H", 1)
        + struct.pack(">i", flags)
        + struct.pack(">H", 3) + _value(b"\x00\x00\x00\x07") + _value(None) + struct.pack(">i", -2)
        + struct.pack(">q", 1234567)
    )  # fmt: skip
    request = read_bound(Envelope(5, False, 0, 9, Opcode.EXECUTE, body))
    assert request is not None and request.timestamp == 1234567
    (statement,) = request.statements
    assert statement.prepared_id == b"id"
    assert statement.values[0] == b"\x00\x00\x00\x07" and statement.values[1] is None
    assert statement.values[2] is UNSET


def test_a_v4_batch_gives_each_statement_its_values() -> None:
    body = (
        b"\x01" + struct.pack(">H", 2)
        + b"\x00" + struct.pack(">i", 9) + b"INSERT ..." [:9] + struct.pack(">H", 1) + _value(b"a")
        + b"\x01" + struct.pack(">H", 2) + b"p1" + struct.pack(">H", 2) + _value(b"b") + _value(b"c")
        + struct.pack(">H", 1) + b"\x00"
    )  # fmt: skip
    request = read_bound(Envelope(4, False, 0, 3, Opcode.BATCH, body))
    assert request is not None
    assert [s.values for s in request.statements] == [[b"a"], [b"b", b"c"]]
    assert request.statements[1].prepared_id == b"p1"


def _peers_v2_rows(rows: list[tuple[str, int]]) -> Envelope:
    spec = struct.pack(">ii", 0x0001, 3) + _string("system") + _string("peers_v2")
    spec += _string("peer") + struct.pack(">H", 0x0010)
    spec += _string("native_address") + struct.pack(">H", 0x0010)
    spec += _string("native_port") + struct.pack(">H", 0x0009)
    body = struct.pack(">i", 2) + spec + struct.pack(">i", len(rows))
    for address, port in rows:
        packed = ipaddress.ip_address(address).packed
        body += _value(packed) + _value(packed) + _value(struct.pack(">i", port))
    return Envelope(5, True, 0, 4, Opcode.RESULT, body)


def test_peer_rows_get_proxy_addresses_and_unknown_nodes_are_dropped() -> None:
    routes = {("127.0.0.11", 9042): ("127.0.0.21", 9142), ("127.0.0.12", 9042): ("127.0.0.22", 9142)}
    rewritten = rewrite_rows(
        _peers_v2_rows([("127.0.0.12", 9042), ("127.0.0.99", 9042)]), "peers_v2", ("127.0.0.11", 9042),
        AddressMap(routes),
    )  # fmt: skip
    assert rewritten.dropped_rows == 1
    body = BodyReader(rewritten.envelope.body)
    body.int(), body.int(), body.int(), body.string(), body.string()
    for _ in range(3):
        body.string(), body.short()
    assert body.int() == 1
    row = [body.bytes_value() for _ in range(3)]
    assert row[0] == row[1] == ipaddress.ip_address("127.0.0.22").packed
    assert row[2] == struct.pack(">i", 9142)


def test_topology_events_name_the_proxy_or_are_dropped() -> None:
    addresses = AddressMap({("127.0.0.12", 9042): ("127.0.0.22", 9142)})

    def event(address: str) -> Envelope:
        body = _string("STATUS_CHANGE") + _string("UP") + b"\x04" + ipaddress.ip_address(address).packed
        return Envelope(5, True, 0, -1, Opcode.EVENT, body + struct.pack(">i", 9042))

    kept = rewrite_event(event("127.0.0.12"), addresses)
    assert kept is not None and ipaddress.ip_address("127.0.0.22").packed in kept.body
    assert kept.body.endswith(struct.pack(">i", 9142))
    assert rewrite_event(event("127.0.0.99"), addresses) is None


def test_supported_offers_no_compression() -> None:
    body = (
        struct.pack(">H", 2)
        + _string("COMPRESSION")
        + struct.pack(">H", 2)
        + _string("lz4")
        + _string("snappy")
    )
    body += _string("CQL_VERSION") + struct.pack(">H", 1) + _string("3.4.7")
    stripped = strip_compression(Envelope(5, True, 0, 0, Opcode.SUPPORTED, body))
    reader = BodyReader(stripped.body)
    entries = {}
    for _ in range(reader.short()):
        key = reader.string()
        entries[key] = [reader.string() for _ in range(reader.short())]
    assert entries == {"COMPRESSION": [], "CQL_VERSION": ["3.4.7"]}


def test_each_node_gets_its_own_loopback_address_on_one_port() -> None:
    nodes = [("127.0.0.11", 9042), ("127.0.0.12", 9042)]
    assert listen_addresses(nodes, ("127.0.0.21", 9142)) == {
        ("127.0.0.11", 9042): ("127.0.0.21", 9142), ("127.0.0.12", 9042): ("127.0.0.22", 9142),
    }  # fmt: skip
    assert listen_addresses(nodes, ("10.0.0.5", 9142))[("127.0.0.12", 9042)] == ("10.0.0.5", 9143)
