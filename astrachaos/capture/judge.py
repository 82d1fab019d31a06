"""The verdict on the captured writes of one key, given the row the table holds (as cells)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from astrachaos.capture.cells import canonical_cell, cells_digest, decode, driver_type, is_native
from astrachaos.capture.keys import value_digest
from astrachaos.capture.model import Told, WriteClass, WriteKind
from astrachaos.reconcile.schema import TableSchema

AS_WRITTEN = (WriteClass.OK, WriteClass.RECOVERED, WriteClass.OVERWRITTEN)
Row = tuple[bytes | None, ...]


class Write(NamedTuple):
    """A captured write as verification reads it (`ledger.WRITE_COLUMNS`)."""

    id: int
    token: int | None
    key: bytes
    column_set: int | None
    digest: int | str | None
    write_timestamp: int | None
    kind: str
    fault: str | None
    connection: str
    stream: int
    sent_at: float
    told: str | None
    error_class: str | None
    error_message: str | None
    answered_at: float | None


@dataclass(frozen=True)
class CaptureRecord:
    """One write (or claimed key) that is not ok."""

    keyspace: str
    table: str
    key: dict[str, Any]  # JSON-safe
    write_class: WriteClass
    silent: bool
    told: str | None
    error: str | None
    fault: str | None
    attempts: int
    kind: str | None = None
    connection: str | None = None
    stream: int | None = None
    sent_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as result.json holds it."""
        return {
            "key": self.key, "keyspace": self.keyspace, "table": self.table,
            "class": self.write_class.value, "silent": self.silent, "told": self.told,
            "error": self.error, "fault": self.fault, "attempts": self.attempts, "kind": self.kind,
            "connection": self.connection, "stream": self.stream, "sent_at": self.sent_at,
        }  # fmt: skip


@dataclass
class Tally:
    """Counts per class, records, what could not be read."""

    counts: Counter[str] = field(default_factory=Counter)
    records: list[CaptureRecord] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)
    reread_consistency: str | None = None


class Judge:
    """Classifies the writes of one table key by key; knows which cells of a row each column set compares."""

    def __init__(self, schema: TableSchema, column_sets: dict[int, tuple[str, ...]], values: Sequence[str],
                 shown: Any, tally: Tally) -> None:  # fmt: skip
        self.schema = schema
        self.column_sets = column_sets
        self.values = list(values)
        self.tally = tally
        self.shown = shown  # key bytes → JSON-safe column → value map
        self._width = len(schema.primary_key)
        self._positions: dict[int | None, list[int] | None] = {}
        self._types = {c.name: c.cql_type for c in schema.values}

    def positions(self, column_set: int | None) -> list[int] | None:
        """Where a column set's cells are in a row (None: a column the reads do not have)."""
        if column_set not in self._positions:
            names = self.column_sets.get(column_set, ()) if column_set is not None else ()
            try:
                self._positions[column_set] = [self._width + self.values.index(n) for n in names]
            except ValueError:
                self._positions[column_set] = None
        return self._positions[column_set]

    def row_digest(self, column_set: int | None, row: Row) -> int | None:
        """The digest of the cells of `column_set` in `row`, computed like the capture's."""
        positions = self.positions(column_set)
        if positions is None:
            return None
        names = self.column_sets.get(column_set, ()) if column_set is not None else ()
        cells: list[bytes | None] = []
        for name, at in zip(names, positions, strict=True):
            cell = row[at]
            if not is_native(self._types.get(name, "")):
                try:
                    cell = canonical_cell(cell, driver_type(self._types.get(name, "")))
                except ValueError:
                    return None
            cells.append(cell)
        return cells_digest(cells)

    def as_written(self, write: Write, row: Row | None) -> bool:
        """Whether the table holds what `write` wrote (absent, for a DELETE)."""
        if write.kind == WriteKind.DELETE.value:
            return row is None
        if row is None:
            return False
        if write.digest is None:
            return True
        if isinstance(write.digest, str):  # the digest of Python values (keys.value_digest)
            names = self.column_sets.get(write.column_set, ()) if write.column_set is not None else ()
            positions = self.positions(write.column_set) or []
            values = {
                n: decode(row[p], self._types.get(n, "")) for n, p in zip(names, positions, strict=False)
            }
            return value_digest(values) == write.digest
        return self.row_digest(write.column_set, row) == write.digest

    def settled(self, writes: Sequence[Write], row: Row | None) -> bool:
        """Whether nothing about this key needs a second read."""
        if not writes:
            return row is not None
        return all(self.as_written(w, row) for w in writes)

    def classify(self, key: bytes, writes: Sequence[Write], row: Row | None, claimed: bool) -> None:
        """Count every write of `key` in its class; record those that are not ok."""
        tally = self.tally
        if row is not None:
            tally.counts["present"] += 1
        if not writes:  # claimed, never reached the proxy
            tally.counts[WriteClass.NEVER_SENT.value] += 1
            silent = row is None
            tally.counts["silent"] += int(silent)
            record = CaptureRecord(
                self.schema.keyspace, self.schema.table, self.shown(key), WriteClass.NEVER_SENT, silent,
                None, None, None, 0,
            )  # fmt: skip
            tally.records.append(record)
            return
        ordered = sorted(writes, key=_order)
        classes = [self._class_of(w, ordered[i + 1 :], row) for i, w in enumerate(ordered)]
        silent = claimed and not any(c in AS_WRITTEN for c in classes if c is not WriteClass.DELETED)
        tally.counts["silent"] += int(silent)
        shown = None
        for write, write_class in zip(ordered, classes, strict=True):
            told = Told(write.told) if write.told else Told.NO_ANSWER
            tally.counts["captured"] += 1
            tally.counts[write_class.value] += 1
            tally.counts["told_success"] += int(told is Told.RESULT)
            if write_class is WriteClass.OK and not silent:
                continue
            shown = shown or self.shown(key)
            error = None if write.error_class is None else f"{write.error_class}: {write.error_message or ''}"
            tally.records.append(
                CaptureRecord(
                    self.schema.keyspace, self.schema.table, shown, write_class, silent, told.value, error,
                    write.fault, len(ordered), write.kind, write.connection, write.stream, write.sent_at,
                )
            )  # fmt: skip

    def _class_of(self, write: Write, later: Sequence[Write], row: Row | None) -> WriteClass:
        told = Told(write.told) if write.told else Told.NO_ANSWER
        rewritten_later = any(w.kind != WriteKind.DELETE.value for w in later)
        if told is not Told.RESULT and row is not None and rewritten_later:
            return WriteClass.OVERWRITTEN  # a later attempt (a retry) or another write took the key
        if self.as_written(write, row):
            return WriteClass.OK if told is Told.RESULT else WriteClass.RECOVERED
        if row is not None and rewritten_later:
            return WriteClass.OVERWRITTEN
        if row is not None and self._newer_in_table(write, row):
            return WriteClass.OVERWRITTEN  # a write the capture could not key (or another client) won
        if row is None and any(w.kind == WriteKind.DELETE.value for w in later):
            return WriteClass.DELETED
        match told:
            case Told.RESULT:
                return WriteClass.LOST
            case Told.ERROR:
                return WriteClass.FAILED
            case Told.CLOSED | Told.NO_ANSWER:
                return WriteClass.INDETERMINATE

    def _newer_in_table(self, write: Write, row: Row) -> bool:
        """Whether a value column holds a write newer than this one (by write timestamps)."""
        if write.write_timestamp is None or len(row) <= self._width + len(self.values):
            return False  # no WRITETIME read with this row
        timed = [c for c in self.values if not self.schema.column(c).multi_cell]
        names = self.column_sets.get(write.column_set, ()) if write.column_set is not None else ()
        base = self._width + len(self.values)
        for name in names:
            if name in timed:
                cell = row[base + timed.index(name)]
                if cell is not None and int.from_bytes(cell, "big", signed=True) > write.write_timestamp:
                    return True
        return False


def _order(write: Write) -> tuple[float, int]:
    at = write.write_timestamp if write.write_timestamp is not None else write.sent_at * 1e6
    return (float(at), write.id)
