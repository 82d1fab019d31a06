"""Compressed CQL traffic the proxy reads: lz4 and snappy envelope bodies (v4), lz4 segments (v5).

Formats (spec sections 5 of native_protocol_v4 and 2.2 of v5): a v4 lz4 body is the
uncompressed length as a big-endian int followed by one raw lz4 block; a v4 snappy body is one
raw snappy block; a v5 lz4 segment payload is one raw lz4 block whose uncompressed length sits
in the segment header. The codecs are cramjam's (imported on first use): when cramjam cannot be
imported, `available()` is empty and the proxy takes compression out of SUPPORTED instead.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import Any


class CompressionError(ValueError):
    """A compressed body or segment that does not decompress."""


@functools.cache
def _cramjam() -> Any:
    try:
        import cramjam
    except ImportError:
        return None
    return cramjam


def available() -> tuple[str, ...]:
    """The compression names this proxy can read (lz4, snappy), empty without cramjam."""
    return ("lz4", "snappy") if _cramjam() is not None else ()


@dataclass(frozen=True)
class BodyCodec:
    """How one connection's envelope bodies are compressed (protocol v4 and older)."""

    name: str

    def decompress(self, body: bytes) -> bytes:
        """The body of an envelope flagged COMPRESSED, inflated."""
        cramjam = _cramjam()
        try:
            if self.name == "lz4":
                if len(body) < 4:
                    raise CompressionError("lz4 body shorter than its length prefix")
                (length,) = struct.unpack_from(">i", body)
                if length == 0:
                    return b""
                data = bytes(cramjam.lz4.decompress_block(body[4:], output_len=length))
                if len(data) != length:
                    raise CompressionError(f"lz4 body gave {len(data)} bytes, its prefix {length}")
                return data
            return bytes(cramjam.snappy.decompress_raw(body))
        except CompressionError:
            raise
        except Exception as error:  # cramjam raises its own DecompressionError
            raise CompressionError(f"{self.name} body does not decompress: {error}") from None

    def compress(self, body: bytes) -> bytes:
        """A body compressed the way the peer expects."""
        cramjam = _cramjam()
        if self.name == "lz4":
            block = bytes(cramjam.lz4.compress_block(body, store_size=False))  # b"" gives b"\x00"
            return struct.pack(">i", len(body)) + block
        return bytes(cramjam.snappy.compress_raw(body))


def body_codec(name: str | None) -> BodyCodec | None:
    """The codec of a STARTUP's COMPRESSION option, or None when this proxy cannot read it."""
    if name is None or name.lower() not in available():
        return None
    return BodyCodec(name.lower())


def segment_codec_available(name: str | None) -> bool:
    """Whether v5 segments compressed with `name` can be read (only lz4 exists in v5)."""
    return name is not None and name.lower() == "lz4" and "lz4" in available()


def inflate_segment(payload: bytes, uncompressed_length: int) -> bytes:
    """A v5 lz4 segment payload, inflated (length 0: the payload was stored uncompressed)."""
    if uncompressed_length == 0:
        return payload
    try:
        data = bytes(_cramjam().lz4.decompress_block(payload, output_len=uncompressed_length))
    except Exception as error:
        raise CompressionError(f"lz4 segment does not decompress: {error}") from None
    if len(data) != uncompressed_length:
        raise CompressionError(f"lz4 segment gave {len(data)} bytes, its header {uncompressed_length}")
    return data


def deflate_segment(payload: bytes) -> tuple[bytes, int]:
    """(encoded payload, uncompressed length for the header): stored as is when lz4 does not shrink it."""
    compressed = bytes(_cramjam().lz4.compress_block(payload, store_size=False)) if payload else b""
    if not payload or len(compressed) >= len(payload):
        return payload, 0
    return compressed, len(payload)
