"""Result pages kept as the bytes the node sent: reads that compare bytes need not decode rows.

Verification checks most partitions against what the run planned there (`workload.prints`). A
partition whose bytes are exactly the planned rows' bytes needs no value of its own in Python:
asked through `wire_rows_handler()`, the driver keeps each page of rows as one `WirePage` instead
of building a tuple and a Python object per cell. A page that must be looked at row by row is
decoded afterwards with the driver's own column types (`WirePage.decoded`), in pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any


@dataclass(frozen=True, slots=True)
class WirePage:
    """One page of rows as the node sent them: how many, the bytes of their cells, how to decode them."""

    rows: int
    cells: bytes  # per row, per column: a signed 32-bit big-endian length (-1: null), then the value
    column_types: tuple[Any, ...]  # the driver's types, to decode the cells
    protocol_version: int

    def decoded(self) -> list[tuple[Any, ...]]:
        """The rows as the driver's default handler would give them (tuples of values)."""
        cells, version, types = self.cells, self.protocol_version, self.column_types
        rows, at = [], 0
        for _ in range(self.rows):
            row: list[Any] = []
            for column_type in types:
                length = int.from_bytes(cells[at : at + 4], "big", signed=True)
                at += 4
                if length < 0:
                    row.append(None)
                    continue
                row.append(column_type.from_binary(cells[at : at + length], version))
                at += length
            rows.append(tuple(row))
        return rows


@cache
def wire_rows_handler() -> type:
    """A protocol handler (the driver's `client_protocol_handler`) that keeps rows as `WirePage`s."""
    from cassandra.protocol import ProtocolHandler, ResultMessage, read_int

    class WireRowsResult(ResultMessage):  # type: ignore[misc]
        def recv_results_rows(
            self, f: Any, protocol_version: int, user_type_map: Any, result_metadata: Any, encryption: Any
        ) -> None:
            self.recv_results_metadata(f, user_type_map)
            column_metadata = self.column_metadata or result_metadata
            self.column_names = [column[2] for column in column_metadata]
            self.column_types = [column[3] for column in column_metadata]
            rows = read_int(f)
            self.parsed_rows = WirePage(rows, f.read(), tuple(self.column_types), protocol_version)

    by_opcode = {**ProtocolHandler.message_types_by_opcode, ResultMessage.opcode: WireRowsResult}

    class WireRowsHandler(ProtocolHandler):  # type: ignore[misc]
        message_types_by_opcode = by_opcode

    return WireRowsHandler
