"""Protocol v5 framing: segments with a CRC24-protected header and a CRC32-protected payload.

Layout (uncompressed, all little-endian): 3 header bytes holding the payload length (17 bits) and
the self-contained flag (bit 17), the CRC24 of those 3 bytes (3 bytes), the payload, and the
CRC32 of the payload (4 bytes). CRC24: initial value 0x875060, polynomial 0x1974F0B, fed the
header integer least significant byte first. CRC32: zlib's CRC-32 primed with the bytes
FA 2D 55 CA. A connection that negotiated lz4 uses 5 header bytes instead: the encoded payload
length (17 bits), the uncompressed length (17 bits, 0 when the payload is stored uncompressed)
and the self-contained flag (bit 34); the CRC32 covers the encoded payload.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

from astrachaos.proxy.compression import CompressionError, deflate_segment, inflate_segment

CRC24_INIT = 0x875060
CRC24_POLY = 0x1974F0B
CRC32_PRIMER = zlib.crc32(b"\xfa\x2d\x55\xca")
HEADER_LENGTH = 3
COMPRESSED_HEADER_LENGTH = 5
HEADER_CRC_LENGTH = 3
TRAILER_LENGTH = 4
MAX_PAYLOAD = 128 * 1024 - 1
SELF_CONTAINED_BIT = 1 << 17


class SegmentError(ValueError):
    """Bytes that are not a valid v5 segment (bad CRC, impossible length)."""


def _crc24_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 16
        for _bit in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= CRC24_POLY
        table.append(crc)
    return tuple(table)


_CRC24_TABLE = _crc24_table()  # a byte at a time: the bitwise loop cost ~8 µs per segment header


def crc24(value: int, length: int) -> int:
    """CRC24 of the `length` low bytes of `value`, least significant byte first."""
    table = _CRC24_TABLE
    if length == HEADER_LENGTH:  # every uncompressed segment's header: unrolled
        crc = ((CRC24_INIT << 8) & 0xFFFFFF) ^ table[((CRC24_INIT >> 16) ^ value) & 0xFF]
        crc = ((crc << 8) & 0xFFFFFF) ^ table[((crc >> 16) ^ (value >> 8)) & 0xFF]
        return ((crc << 8) & 0xFFFFFF) ^ table[((crc >> 16) ^ (value >> 16)) & 0xFF]
    crc = CRC24_INIT
    for _ in range(length):
        crc = ((crc << 8) & 0xFFFFFF) ^ table[((crc >> 16) ^ value) & 0xFF]
        value >>= 8
    return crc


def crc24_of_bytes(data: bytes) -> int:
    """CRC24 of a byte string read as one little-endian integer (the header's own reading)."""
    return crc24(int.from_bytes(data, "little"), len(data))


def crc32(payload: bytes) -> int:
    """The payload CRC32 of a v5 segment."""
    return zlib.crc32(payload, CRC32_PRIMER)


class Segment(NamedTuple):
    """One decoded segment: its payload and whether it holds whole envelopes only (a tuple: made per
    segment, a frozen dataclass's __init__ cost more than the rest of reading it)."""

    payload: bytes
    self_contained: bool


def encode_segment(payload: bytes, self_contained: bool = True, compressed: bool = False) -> bytes:
    """One segment around `payload` (at most MAX_PAYLOAD bytes), lz4-compressed if `compressed`."""
    if len(payload) > MAX_PAYLOAD:
        raise SegmentError(f"segment payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    if compressed:
        encoded, uncompressed = deflate_segment(payload)
        header_length = COMPRESSED_HEADER_LENGTH
        header = len(encoded) | uncompressed << 17 | (1 << 34 if self_contained else 0)
    else:
        encoded, header_length = payload, HEADER_LENGTH
        header = len(payload) | (SELF_CONTAINED_BIT if self_contained else 0)
    return (
        header.to_bytes(header_length, "little")
        + crc24(header, header_length).to_bytes(HEADER_CRC_LENGTH, "little")
        + encoded
        + struct.pack("<I", crc32(encoded))
    )


def encode_envelopes(envelopes: bytes, compressed: bool = False) -> bytes:
    """Wrap a run of whole envelopes: self-contained segments, or a split chain if too large."""
    if len(envelopes) <= MAX_PAYLOAD:
        return encode_segment(envelopes, True, compressed)
    pieces = [envelopes[i : i + MAX_PAYLOAD] for i in range(0, len(envelopes), MAX_PAYLOAD)]
    return b"".join(encode_segment(piece, False, compressed) for piece in pieces)


class SegmentReader:
    """Incremental decoder: feed bytes as they arrive, take whole segments out.

    `compressed` is set once the connection negotiated lz4: its segments have the longer header.
    """

    def __init__(self, compressed: bool = False) -> None:
        self._buffer = bytearray()
        self.compressed = compressed
        self.last_raw = b""  # the bytes of the segments the last `feed` decoded, as received

    def feed(self, data: bytes) -> list[Segment]:
        """Add received bytes; return every segment now complete (CRCs checked, payloads inflated)."""
        buffer = self._buffer
        buffer += data
        segments: list[Segment] = []
        header_length = COMPRESSED_HEADER_LENGTH if self.compressed else HEADER_LENGTH
        start = header_length + HEADER_CRC_LENGTH
        at = 0  # what was decoded is removed once, at the end
        try:
            while len(buffer) - at >= start:
                header = int.from_bytes(buffer[at : at + header_length], "little")
                expected = int.from_bytes(buffer[at + header_length : at + start], "little")
                if crc24(header, header_length) != expected:
                    raise SegmentError("segment header CRC24 mismatch (corrupt stream)")
                length = header & MAX_PAYLOAD
                total = start + length + TRAILER_LENGTH
                if len(buffer) - at < total:
                    break
                payload = bytes(buffer[at + start : at + start + length])
                (trailer,) = struct.unpack_from("<I", buffer, at + start + length)
                if crc32(payload) != trailer:
                    raise SegmentError("segment payload CRC32 mismatch")
                if self.compressed:
                    try:
                        payload = inflate_segment(payload, (header >> 17) & MAX_PAYLOAD)
                    except CompressionError as error:
                        raise SegmentError(str(error)) from None
                    self_contained = bool(header >> 34 & 1)
                else:
                    self_contained = bool(header & SELF_CONTAINED_BIT)
                segments.append(Segment(payload, self_contained))
                at += total
        finally:
            self.last_raw = bytes(buffer[:at])
            del buffer[:at]
        return segments

    def take_rest(self) -> bytes:
        """Bytes buffered but not yet decoded (to fall back to raw forwarding)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest
