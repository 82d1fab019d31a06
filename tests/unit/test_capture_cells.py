"""Captured cells: keys join and split back, digests tell null from empty, EXECUTE read with struct."""

from __future__ import annotations

import struct

import pytest

from astrachaos.capture.cells import NULL_DIGEST, KeyCodec, cells_digest, fingerprint, serialize
from astrachaos.proxy.bound import UNSET, read_bound
from astrachaos.proxy.cql import Envelope, Opcode
from astrachaos.standalone.capture_plan import execute_values


def test_keys_of_fixed_and_variable_width_cells_split_back() -> None:
    codec = KeyCodec(["text", "int", "blob", "text"], 2)
    cells = [b"ab", serialize(7, "int"), b"", b"last one"]
    key = codec.join(cells)
    assert codec.split(key) == cells
    seven = serialize(7, "int")
    assert codec.join([b"a", seven, b"b", b""]) != codec.join([b"", seven, b"ab", b""])
    fixed = KeyCodec(["int", "bigint"], 1)
    one, zero = b"\x00\x00\x00\x01", b"\x00" * 8
    assert fixed.simple and fixed.join([one, zero]) == one + zero
    with pytest.raises(ValueError):
        fixed.split(b"\x00\x00\x00\x01")  # too short for a bigint after the int


def test_digests_tell_null_from_empty_and_order_matters() -> None:
    assert cells_digest([None]) == NULL_DIGEST != cells_digest([b""])
    assert cells_digest([b"a", None]) != cells_digest([None, b"a"])
    assert cells_digest([b"a", b"b"]) != cells_digest([b"ab", b""])
    digest = cells_digest([b"x"])
    assert 0 <= fingerprint(b"key", digest) < 2**40
    assert fingerprint(b"key", digest) != fingerprint(b"kez", digest)


def _value(data: bytes | None) -> bytes:
    return struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data


@pytest.mark.parametrize("version", [4, 5])
def test_execute_values_read_with_struct_match_the_full_reader(version: int) -> None:
    flags = 0x01 | 0x04 | 0x20
    body = struct.pack(">H", 3) + b"pid"
    if version >= 5:
        body += struct.pack(">H", 2) + b"md"
    body += struct.pack(">H", 1) + (struct.pack(">i", flags) if version >= 5 else bytes([flags]))
    body += struct.pack(">H", 3) + _value(b"\x00\x00\x00\x07") + _value(None) + struct.pack(">i", -2)
    body += struct.pack(">i", 5000) + struct.pack(">q", 1234567)
    read = execute_values(body, version)
    full = read_bound(Envelope(version, False, 0, 9, Opcode.EXECUTE, body))
    assert read is not None and full is not None
    prepared_id, values, timestamp = read
    assert prepared_id == b"pid" and timestamp == 1234567 == full.timestamp
    assert values[:2] == full.statements[0].values[:2] and values[2] is UNSET
    assert execute_values(body[:-3], version) is None  # cut short
