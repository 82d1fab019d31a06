"""What a capture holds: one write as it left the client, what the client was told, and the rest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Told(StrEnum):
    """What the client learnt about one write."""

    RESULT = "result"  # a RESULT: the database says it is applied
    ERROR = "error"  # an ERROR frame or a driver exception
    CLOSED = "closed"  # the connection closed before an answer
    NO_ANSWER = "no_answer"  # nothing at all (still pending when the capture ended)


class WriteKind(StrEnum):
    """The statement kind of a captured write."""

    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


class WriteClass(StrEnum):
    """The verdict on one captured write (or on one claimed key, for never_sent)."""

    OK = "ok"  # told success, value present
    LOST = "lost"  # told success, absent or holding an older value
    RECOVERED = "recovered"  # told error or no answer, yet its value is present
    FAILED = "failed"  # told error, absent
    INDETERMINATE = "indeterminate"  # no answer, absent
    OVERWRITTEN = "overwritten"  # a later captured write to the same key won
    DELETED = "deleted"  # a later captured DELETE explains the absence
    UNVERIFIABLE = "unverifiable"  # its key could not be known
    NEVER_SENT = "never_sent"  # the app logged it as stored; no request for that key was seen


@dataclass(frozen=True)
class CapturedWrite:
    """One write as it left the client: where, which key, which values (digested), under which fault.

    `key` maps every primary-key column to its value; `value_columns` are the other columns the
    write sets and `value_digest` their digest (`keys.value_digest`), None when the stored value
    cannot be compared (collection appends, counters). `write_timestamp` is the client's USING
    TIMESTAMP / protocol timestamp in microseconds, if it set one.
    """

    keyspace: str
    table: str
    key: Mapping[str, Any]
    key_types: Mapping[str, str]  # column → CQL type, to bind the key again
    value_digest: str | int | None  # str: keys.value_digest of Python values; int: cells.cells_digest
    kind: WriteKind
    connection: str
    stream: int
    sent_at: float  # epoch seconds
    value_columns: tuple[str, ...] = ()
    write_timestamp: int | None = None
    fault: str | None = None


@dataclass(frozen=True)
class Answer:
    """What the client was told about one captured write, and when."""

    told: Told
    error_class: str | None = None
    error_message: str | None = None
    answered_at: float | None = None  # epoch seconds; None for no_answer


@dataclass(frozen=True)
class Unverifiable:
    """A write that passed but whose key cannot be known, with the reason."""

    reason: str
    keyspace: str | None
    table: str | None
    statement: str  # an excerpt of the CQL text
    connection: str = ""
    at: float = 0.0
    fault: str | None = None
    told: Told | None = None


@dataclass(frozen=True)
class StoredWrite:
    """A captured write read back from the ledger, with its answer."""

    id: int
    write: CapturedWrite
    answer: Answer = field(default_factory=lambda: Answer(Told.NO_ANSWER))
