"""Record each write of a wrapped session in the capture ledger, and what the code was told.

Keys come from the table's primary key in the driver's schema metadata (kept in memory by the
driver: no query on the caller's thread, which may be the driver's event loop) and from the
values the statement binds; `capture.keys` makes the key and the digest of the other values,
exactly as for the proxy's capture. A write whose key cannot be known is counted unverifiable.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from astrachaos.capture.keys import Keyed, TableKeys, is_system_keyspace, key_of, table_keys_from_rows
from astrachaos.capture.ledger import CaptureLedger
from astrachaos.capture.model import CapturedWrite, Told, Unverifiable, WriteKind
from astrachaos.dropin.statements import RowWrite

_NO_ANSWER = {"OperationTimedOut"}  # the client gave up waiting: no answer was received
_CLOSED = {"ConnectionShutdown", "ConnectionException"}


def told_of(error: BaseException | None) -> Told:
    """What the calling code learnt: a result, an error, a closed connection, or no answer."""
    if error is None:
        return Told.RESULT
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & _NO_ANSWER:
        return Told.NO_ANSWER
    if names & _CLOSED:
        return Told.CLOSED
    if "NoHostAvailable" in names:  # what each host did: a connection closed under the request?
        per_host = (getattr(error, "errors", None) or {}).values()
        inner = {told_of(e) for e in per_host if isinstance(e, BaseException)}
        for told in (Told.NO_ANSWER, Told.CLOSED):
            if told in inner:
                return told
    return Told.ERROR


class CaptureRecorder:
    """The observer of a wrapped session that writes the capture ledger."""

    def __init__(self, ledger: CaptureLedger, session: Any) -> None:
        self._ledger = ledger
        self._session = session
        self._tables: dict[tuple[str, str], TableKeys | None] = {}
        self._lock = threading.Lock()
        self._connection = f"python:{os.getpid()}"
        self._stream = 0

    def sent(self, rows: list[RowWrite], timestamp_us: int | None, injected: str | None) -> list[int]:
        """Capture each row; the ids of those with a known key (for `answered`)."""
        ids: list[int] = []
        now = time.time()
        for row in rows:
            if row.keyspace is not None and is_system_keyspace(row.keyspace):
                continue
            keyed = self._keyed(row)
            if isinstance(keyed, str):
                self._ledger.unverifiable(
                    Unverifiable(
                        keyed, row.keyspace, row.table, row.qualified, self._connection, now, injected
                    )
                )
                continue
            assert row.keyspace is not None and row.table is not None
            with self._lock:
                self._stream += 1
                stream = self._stream
            ids.append(
                self._ledger.sent(
                    CapturedWrite(
                        keyspace=row.keyspace,
                        table=row.table,
                        key=keyed.key,
                        key_types=keyed.key_types,
                        value_digest=keyed.value_digest,
                        kind=WriteKind(row.kind),
                        connection=self._connection,
                        stream=stream,
                        sent_at=now,
                        value_columns=keyed.value_columns,
                        write_timestamp=timestamp_us,
                        fault=injected,
                    )
                )
            )
        return ids

    def answered(self, token: Any, error: BaseException | None) -> None:
        """Record what the code was told for every row of the statement."""
        told = told_of(error)
        for write_id in token:
            self._ledger.answered(
                write_id,
                told,
                None if error is None else type(error).__name__,
                None if error is None else str(error),
            )

    def _keyed(self, row: RowWrite) -> Keyed | str:
        if row.reason is not None:
            return row.reason
        if row.conditional:
            return "conditional (LWT) write: whether it applied is in the result rows"
        if row.keyspace is None or row.table is None:
            return "no keyspace: neither in the statement nor on the session"
        keys = self._table_keys(row.keyspace, row.table)
        if keys is None:
            return "the table is not in the driver's schema metadata"
        comparable = row.comparable
        if row.decoded:
            values = list(row.values.items())
        else:  # parameters or literals: only values read back as the driver reads them are compared
            values = []
            for name, value in row.values.items():
                normal = _normalized(value, keys.types.get(name))
                if normal is _UNSURE:
                    if name in keys.primary_key:
                        return f"key column {name} has a value not read as a {keys.types.get(name)}"
                    comparable, normal = False, value  # judged on presence only
                values.append((name, normal))
        keyed = key_of(keys, values, WriteKind(row.kind), comparable=comparable)
        return keyed if isinstance(keyed, Keyed) else keyed.value

    def _table_keys(self, keyspace: str, table: str) -> TableKeys | None:
        with self._lock:
            if (keyspace, table) in self._tables:
                return self._tables[(keyspace, table)]
        keys = _from_metadata(self._session, keyspace, table)
        with self._lock:
            self._tables[(keyspace, table)] = keys
        return keys


def _from_metadata(session: Any, keyspace: str, table: str) -> TableKeys | None:
    """The table's key from the driver's schema metadata (in memory)."""
    try:
        meta = session.cluster.metadata.keyspaces[keyspace].tables[table]
    except (KeyError, AttributeError):
        return None
    rows: list[tuple[str, str, int, str]] = []
    for position, column in enumerate(meta.partition_key):
        rows.append((column.name, "partition_key", position, column.cql_type))
    for position, column in enumerate(meta.clustering_key):
        rows.append((column.name, "clustering", position, column.cql_type))
    keyed = {name for name, *_ in rows}
    rows.extend(
        (name, "regular", -1, column.cql_type) for name, column in meta.columns.items() if name not in keyed
    )
    return table_keys_from_rows(keyspace, table, rows)


_UNSURE: Any = object()  # a value whose read-back form is not known


def _normalized(value: Any, cql_type: str | None) -> Any:
    """The value as the driver would read it back from a column of `cql_type` (int into a double: 1.0).

    _UNSURE when it cannot tell: a literal the type does not take as is (a timestamp as text), or a
    collection, tuple or user type.
    """
    if value is None:
        return value
    from cassandra.cqltypes import _cqltypes

    kind = _cqltypes.get((cql_type or "").strip().lower())
    if kind is None:
        return _UNSURE
    try:
        return kind.from_binary(kind.to_binary(value, 4), 4)
    except Exception:
        return _UNSURE
