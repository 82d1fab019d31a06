"""Keep every client connection on the proxy: node addresses in answers become proxy addresses.

A driver learns the cluster from `system.local`, `system.peers` and `system.peers_v2` rows and
from TOPOLOGY_CHANGE / STATUS_CHANGE events, then connects to the addresses it read. The proxy
rewrites those answers: each node's address (every inet cell of its row) becomes the address the
proxy listens on for that node, and its `native_port` / `rpc_port` the listener's port. A peer
row or event for a node the proxy does not front is dropped, so no driver can reach a node
around the proxy. `SUPPORTED` answers offer only the compressions the proxy can read
(`compression.py`), so a client never picks one it cannot follow.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from astrachaos.proxy.cql import BodyReader, Envelope, FrameError, response_body

Address = tuple[str, int]

SYSTEM_TABLE = re.compile(r"\bFROM\s+system\s*\.\s*\"?(local|peers_v2|peers)\b", re.IGNORECASE)

RESULT_ROWS = 0x0002
_GLOBAL_SPEC, _MORE_PAGES, _NO_METADATA, _METADATA_CHANGED = 0x0001, 0x0002, 0x0004, 0x0008
_INET, _INT = 0x0010, 0x0009
_PORT_COLUMNS = {"native_port", "rpc_port"}


@dataclass(frozen=True)
class AddressMap:
    """Upstream node (ip, port) → the (ip, port) the proxy listens on for it."""

    routes: Mapping[Address, Address]

    @classmethod
    def resolve(cls, routes: Mapping[Address, Address]) -> AddressMap:
        """Upstream host names resolved to the IP addresses nodes report about themselves."""
        return cls({(_ip_of(host), port): listen for (host, port), listen in routes.items()})

    def lookup(self, ip: str, port: int | None) -> Address | None:
        """The listener of the node at `ip` (and `port`, when the answer says it)."""
        if port is not None and (ip, port) in self.routes:
            return self.routes[(ip, port)]
        same_ip = [listen for (node_ip, _), listen in self.routes.items() if node_ip == ip]
        return same_ip[0] if len(same_ip) == 1 or (same_ip and port is None) else None


def _ip_of(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return socket.gethostbyname(host)


@functools.lru_cache(maxsize=4096)  # statement texts repeat (a prepared one on every EXECUTE)
def system_table(text: str | None) -> str | None:
    """`local`, `peers` or `peers_v2` when the statement reads that system table."""
    if text is None:
        return None
    found = SYSTEM_TABLE.search(text)
    return found.group(1).lower() if found else None


def strip_compression(envelope: Envelope, keep: Sequence[str] = ()) -> Envelope:
    """A SUPPORTED answer offering no compression but the names in `keep` (those the proxy reads)."""
    body = BodyReader(envelope.body)
    try:
        entries = []
        for _ in range(body.short()):
            key = body.string()
            values = [body.string() for _ in range(body.short())]
            entries.append((key, values))
    except FrameError:
        return envelope
    # The key stays, possibly empty: some drivers read it unconditionally.
    readable = {name.lower() for name in keep}
    kept = [
        (k, [c for c in v if c.lower() in readable] if k.upper() == "COMPRESSION" else v) for k, v in entries
    ]
    out = struct.pack(">H", len(kept))
    for key, values in kept:
        out += _string(key) + struct.pack(">H", len(values)) + b"".join(_string(v) for v in values)
    return Envelope(
        envelope.version, envelope.is_response, envelope.flags, envelope.stream, envelope.opcode, out
    )


@dataclass(frozen=True)
class Rewritten:
    """A rewritten answer, how many peer rows were dropped, whether it could be read at all."""

    envelope: Envelope
    dropped_rows: int = 0
    readable: bool = True


def rewrite_rows(envelope: Envelope, table: str, node: Address, addresses: AddressMap) -> Rewritten:
    """The Rows answer of a system.local/peers/peers_v2 query with proxy addresses in it."""
    try:
        body = response_body(envelope)
        start = body.at
        if body.int() != RESULT_ROWS:
            return Rewritten(envelope)
        flags, count = body.int(), body.int()
        if flags & _MORE_PAGES:
            body.bytes_value()
        if flags & _METADATA_CHANGED:
            body.short_bytes()
        if flags & _NO_METADATA:
            return Rewritten(envelope, readable=False)
        if flags & _GLOBAL_SPEC:
            body.string(), body.string()
        columns: list[tuple[str, int]] = []
        for _ in range(count):
            if not flags & _GLOBAL_SPEC:
                body.string(), body.string()
            name = body.string()
            columns.append((name, _skip_option(body)))
        metadata_end = body.at
        rows = [[body.bytes_value() for _ in columns] for _ in range(body.int())]
    except FrameError:
        return Rewritten(envelope, readable=False)
    names = [name for name, _ in columns]
    kept = []
    for row in rows:
        listen = _listener_of(table, dict(zip(names, row, strict=True)), node, addresses)
        if listen is None:
            continue
        kept.append(
            [_rewrite_cell(kind, name, cell, listen) for (name, kind), cell in zip(columns, row, strict=True)]
        )
    out = bytearray(envelope.body[:metadata_end])
    out += struct.pack(">i", len(kept))
    for row in kept:
        for cell in row:
            out += struct.pack(">i", -1) if cell is None else struct.pack(">i", len(cell)) + cell
    del start
    rewritten = Envelope(envelope.version, True, envelope.flags, envelope.stream, envelope.opcode, bytes(out))
    return Rewritten(rewritten, dropped_rows=len(rows) - len(kept))


def rewrite_event(envelope: Envelope, addresses: AddressMap) -> Envelope | None:
    """A TOPOLOGY/STATUS_CHANGE event about a node, with its proxy address; None to drop it."""
    body = BodyReader(envelope.body)
    try:
        kind = body.string()
        if kind not in ("TOPOLOGY_CHANGE", "STATUS_CHANGE"):
            return envelope
        change = body.string()
        raw = body.take(body.byte())
        port = body.int()
    except FrameError:
        return envelope
    listen = addresses.lookup(str(ipaddress.ip_address(raw)), port)
    if listen is None:
        return None
    ip = ipaddress.ip_address(listen[0]).packed
    out = _string(kind) + _string(change) + bytes([len(ip)]) + ip + struct.pack(">i", listen[1])
    return Envelope(envelope.version, True, envelope.flags, envelope.stream, envelope.opcode, out)


def _listener_of(
    table: str, row: Mapping[str, bytes | None], node: Address, addresses: AddressMap
) -> Address | None:
    if table == "local":
        return addresses.routes.get(node) or addresses.lookup(node[0], node[1])
    raw = row.get("native_address") or row.get("rpc_address") or row.get("peer")
    if raw is None:
        return None
    ip = str(ipaddress.ip_address(raw))
    if ip in ("0.0.0.0", "::"):
        raw_peer = row.get("peer")
        ip = str(ipaddress.ip_address(raw_peer)) if raw_peer else ip
    port_cell = row.get("native_port")
    port = struct.unpack(">i", port_cell)[0] if port_cell and len(port_cell) == 4 else None
    return addresses.lookup(ip, port)


def _rewrite_cell(kind: int, name: str, cell: bytes | None, listen: Address) -> bytes | None:
    if cell is None:
        return None
    if kind == _INET and len(cell) in (4, 16):
        return ipaddress.ip_address(listen[0]).packed
    if kind == _INT and name in _PORT_COLUMNS and len(cell) == 4:
        return struct.pack(">i", listen[1])
    return cell


def _skip_option(body: BodyReader) -> int:
    """Read one [option] type spec; return its id."""
    kind = body.short()
    if kind == 0x0000:
        body.string()
    elif kind in (0x0020, 0x0022):
        _skip_option(body)
    elif kind == 0x0021:
        _skip_option(body)
        _skip_option(body)
    elif kind == 0x0030:
        body.string(), body.string()
        for _ in range(body.short()):
            body.string()
            _skip_option(body)
    elif kind == 0x0031:
        for _ in range(body.short()):
            _skip_option(body)
    return kind


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack(">H", len(data)) + data
