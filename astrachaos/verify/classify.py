"""The classes of outcome: what became of one record, from what the driver said and what was read."""

from __future__ import annotations

from enum import StrEnum

from astrachaos.events import DriverOutcome


class RecordClass(StrEnum):
    """What became of one record (DESIGN.md's table, plus `corrupted`)."""

    OK = "ok"  # acknowledged, present, value matches
    LOST = "lost"  # acknowledged, absent after settle and re-read at the strongest CL
    STALE = "stale"  # absent at first read, present on re-read: replication lag, not loss
    OVERWRITTEN = "overwritten"  # key holds another record's value (collision, LWW shadowing)
    CORRUPTED = "corrupted"  # key holds a value no record of the run wrote (e.g. a null column)
    RECOVERED = "recovered"  # the driver reported failure or timeout, yet the row is present
    FAILED = "failed"  # the driver reported failure and the row is absent: loud and honest
    INDETERMINATE = "indeterminate"  # timed out (or no answer before a crash) and absent
    DROPPED = "dropped"  # never sent: throttled, queue overflow, the app dropped it
    UNEXPECTED = "unexpected"  # a row of the run that no record was meant to write there
    DUPLICATED = "duplicated"  # its own value, applied more than once (a retried list append)


class Seen(StrEnum):
    """What a read found at a record's primary key."""

    OWN = "own"  # this record's own value
    OTHER = "other"  # the value of another record of the run
    CORRUPT = "corrupt"  # a value no record wrote
    REPEATED = "repeated"  # its own value, applied more than once
    ABSENT = "absent"


# Classes in which a record is not in the table as the application wrote it. A record in one
# of these that the application logged as a success is *silent* loss.
NOT_AS_WRITTEN = frozenset(
    {
        RecordClass.LOST,
        RecordClass.OVERWRITTEN,
        RecordClass.CORRUPTED,
        RecordClass.FAILED,
        RecordClass.INDETERMINATE,
        RecordClass.DROPPED,
        RecordClass.DUPLICATED,
    }
)


# Classes in which the record is where the application meant it to be (on time or late, or
# despite an error the driver reported): the reports paint these green, every other class red.
FINE = frozenset({RecordClass.OK, RecordClass.STALE, RecordClass.RECOVERED})


def classify(outcome: DriverOutcome | None, first: Seen, reread: Seen | None) -> RecordClass:
    """Class of one record; `outcome` None means no answer was recorded (the run crashed).

    `reread` is the strong-CL read made after the settle window for records not seen as their
    own value at first; None when no re-read was made.
    """
    final = reread if reread is not None else first
    if final is Seen.REPEATED:  # it is there, but more than once: whatever the driver said
        return RecordClass.DUPLICATED
    acked = outcome is DriverOutcome.ACKED
    if final is Seen.OWN:
        if not acked:
            return RecordClass.RECOVERED
        return RecordClass.OK if first is Seen.OWN else RecordClass.STALE
    if acked:
        return {
            Seen.OTHER: RecordClass.OVERWRITTEN,
            Seen.CORRUPT: RecordClass.CORRUPTED,
            Seen.ABSENT: RecordClass.LOST,
        }[final]
    if outcome is DriverOutcome.FAILED:
        return RecordClass.FAILED
    if outcome is DriverOutcome.DROPPED:
        return RecordClass.DROPPED
    return RecordClass.INDETERMINATE


def is_silent(record_class: RecordClass, app_logged_success: bool | None) -> bool:
    """The application logged success, yet the record is not in the table as written."""
    return bool(app_logged_success) and record_class in NOT_AS_WRITTEN
