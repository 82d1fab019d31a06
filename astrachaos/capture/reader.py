"""Reading a capture ledger (read-only: a proxy may still be writing it); keys decoded only on demand."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astrachaos.capture import journal
from astrachaos.capture.cells import KeyCodec, decode
from astrachaos.capture.ledger import (
    FILE_NAME,
    INDEX,
    INDEX_NAME,
    apply_journal_copy,
    capture_file,
    check_version,
    recover,
)
from astrachaos.capture.model import Answer, CapturedWrite, StoredWrite, Told, Unverifiable, WriteKind
from astrachaos.errors import Inconclusive
from astrachaos.reconcile.schema import Column, cast, encode

_BUSY_TIMEOUT_MS = 30_000


@dataclass
class TableEntry:
    """A captured table as the ledger registered it: id, key columns and types, partition columns."""

    id: int
    keyspace: str
    table: str
    key_columns: list[str]
    key_types: dict[str, str]
    partition_columns: int | None
    codec: KeyCodec = field(init=False)

    def __post_init__(self) -> None:
        self.codec = KeyCodec([self.key_types.get(c, "") for c in self.key_columns], self.partition_columns)

    def key_values(self, key: bytes) -> dict[str, Any]:
        """The key as column → Python value (as a key file would give it)."""
        try:
            cells = self.codec.split(key)
        except ValueError:
            return {"key": key.hex()}
        values = {}
        for name, cell in zip(self.key_columns, cells, strict=True):
            cql_type = self.key_types.get(name, "blob")
            values[name] = cast(Column(name, cql_type, "key"), encode(decode(cell, cql_type)))
        return values


class CaptureReader:
    """Reads a capture ledger (read-only: a proxy may still be writing it)."""

    def __init__(self, directory: Path) -> None:
        self.path = capture_file(directory)
        if not self.path.is_file():
            raise Inconclusive(f"no capture at {directory} (no {FILE_NAME})")
        self._copy: Path | None = None
        try:
            self.conn = _read_only(self.path)
            (version,) = self.conn.execute("PRAGMA user_version").fetchone()
        except sqlite3.Error as error:
            raise Inconclusive(f"cannot read the capture at {self.path}: {error}") from error
        check_version(self.path, version)
        try:
            if journal.generations(self.path.parent) and recover(self.path.parent):  # its producer was killed
                self.conn.close()
                self.conn = _read_only(self.path)
            indexes = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            if INDEX_NAME not in indexes or journal.generations(self.path.parent):
                # Its producer still runs (or was killed, and this directory cannot be written):
                # read a copy, with the journal's rows SQLite does not hold yet, indexed.
                self._copy = Path(tempfile.mkdtemp(prefix="astrachaos-capture-")) / FILE_NAME
                target = sqlite3.connect(self._copy, isolation_level=None)
                try:
                    apply_journal_copy(self.conn, target, self.path.parent)
                    target.execute(INDEX)
                finally:
                    target.close()
                self.conn.close()
                self.conn = _read_only(self._copy)
            self.conn.execute("PRAGMA cache_size = -65536")
        except (sqlite3.Error, journal.JournalError) as error:
            raise Inconclusive(f"cannot read the capture at {self.path}: {error}") from error

    def meta(self) -> dict[str, str]:
        """The metadata producers stored."""
        return dict(self.conn.execute("SELECT name, value FROM meta"))

    def table_entries(self) -> list[TableEntry]:
        """Every table with captured writes, as registered."""
        rows = self.conn.execute(
            "SELECT id, keyspace, tbl, key_columns, key_types, partition_columns FROM tables"
            " ORDER BY keyspace, tbl"
        )
        return [TableEntry(i, ks, tb, json.loads(c), json.loads(t), p) for i, ks, tb, c, t, p in rows]

    def tables(self) -> list[tuple[str, str]]:
        """Every (keyspace, table) with captured writes."""
        return [(e.keyspace, e.table) for e in self.table_entries()]

    def column_sets(self, table_id: int) -> dict[int, tuple[str, ...]]:
        """Column-set id → value columns, for one table."""
        rows = self.conn.execute("SELECT id, columns FROM column_sets WHERE table_id = ?", (table_id,))
        return {i: tuple(json.loads(c)) for i, c in rows}

    def count(self) -> int:
        """How many writes were captured."""
        return int(self.conn.execute("SELECT count(*) FROM writes").fetchone()[0])

    def writes(self, keyspace: str, table: str) -> Iterator[StoredWrite]:
        """The captured writes to one table, keys decoded, grouped by key, in the order they were sent."""
        entry = next((e for e in self.table_entries() if (e.keyspace, e.table) == (keyspace, table)), None)
        if entry is None:
            return
        columns = self.column_sets(entry.id)
        query = f"SELECT {WRITE_COLUMNS} {WRITES_JOINED} WHERE w.table_id = ? ORDER BY w.key, w.id"
        for row in self.conn.execute(query,
                                     (entry.id,)):  # fmt: skip
            yield stored_write(entry, columns, row)

    def unverifiable(self) -> list[Unverifiable]:
        """Every write counted as unverifiable."""
        rows = self.conn.execute(
            "SELECT reason, keyspace, tbl, statement, connection, at, fault FROM unverifiable ORDER BY id"
        )
        return [Unverifiable(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]

    def close(self) -> None:
        """Close the file (and delete an indexed copy)."""
        self.conn.close()
        if self._copy is not None:
            for path in self._copy.parent.glob("*"):
                path.unlink(missing_ok=True)
            self._copy.parent.rmdir()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# A write row with its answer: what verification and `writes` read.
WRITE_COLUMNS = (
    "w.id, w.token, w.key, w.column_set, w.digest, w.write_timestamp, w.kind, w.fault, w.connection,"
    " w.stream, w.sent_at, a.told, a.error_class, a.error_message, a.answered_at"
)
WRITES_JOINED = "FROM writes w LEFT JOIN answers a ON a.write_id = w.id"


def stored_write(
    entry: TableEntry, column_sets: dict[int, tuple[str, ...]], row: Sequence[Any]
) -> StoredWrite:
    """A row of `WRITE_COLUMNS` as a StoredWrite with its key decoded."""
    (write_id, _, key, column_set, digest, timestamp, kind, fault, connection, stream, sent_at, told,
     error_class, error_message, answered_at) = row  # fmt: skip
    write = CapturedWrite(
        keyspace=entry.keyspace, table=entry.table, key=entry.key_values(key), key_types=entry.key_types,
        value_digest=digest, kind=WriteKind(kind), connection=connection, stream=stream, sent_at=sent_at,
        value_columns=column_sets.get(column_set, ()), write_timestamp=timestamp, fault=fault,
    )  # fmt: skip
    answer = Answer(Told(told), error_class, error_message, answered_at) if told else Answer(Told.NO_ANSWER)
    return StoredWrite(write_id, write, answer)


def _read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    return conn
