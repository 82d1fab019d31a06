"""The classification table, exhaustively: every driver outcome × every first read × re-read."""

from __future__ import annotations

import itertools

import pytest

from astrachaos.events import DriverOutcome
from astrachaos.verify.classify import NOT_AS_WRITTEN, RecordClass, Seen, classify, is_silent

A, F, T, D = (
    DriverOutcome.ACKED,
    DriverOutcome.FAILED,
    DriverOutcome.INDETERMINATE,
    DriverOutcome.DROPPED,
)
C = RecordClass

# (outcome, final read) -> class, when the first read already saw the final state.
EXPECTED_FINAL = {
    (A, Seen.OWN): C.OK,
    (A, Seen.OTHER): C.OVERWRITTEN,
    (A, Seen.CORRUPT): C.CORRUPTED,
    (A, Seen.ABSENT): C.LOST,
    (A, Seen.REPEATED): C.DUPLICATED,
    (F, Seen.OWN): C.RECOVERED,
    (F, Seen.OTHER): C.FAILED,
    (F, Seen.CORRUPT): C.FAILED,
    (F, Seen.ABSENT): C.FAILED,
    (F, Seen.REPEATED): C.DUPLICATED,
    (T, Seen.OWN): C.RECOVERED,
    (T, Seen.OTHER): C.INDETERMINATE,
    (T, Seen.CORRUPT): C.INDETERMINATE,
    (T, Seen.ABSENT): C.INDETERMINATE,
    (T, Seen.REPEATED): C.DUPLICATED,
    (D, Seen.OWN): C.RECOVERED,
    (D, Seen.OTHER): C.DROPPED,
    (D, Seen.CORRUPT): C.DROPPED,
    (D, Seen.ABSENT): C.DROPPED,
    (D, Seen.REPEATED): C.DUPLICATED,
    (None, Seen.OWN): C.RECOVERED,
    (None, Seen.OTHER): C.INDETERMINATE,
    (None, Seen.CORRUPT): C.INDETERMINATE,
    (None, Seen.ABSENT): C.INDETERMINATE,
    (None, Seen.REPEATED): C.DUPLICATED,
}


@pytest.mark.parametrize(("outcome", "seen"), list(EXPECTED_FINAL))
def test_class_when_first_read_is_final(outcome: DriverOutcome | None, seen: Seen) -> None:
    assert classify(outcome, seen, None) is EXPECTED_FINAL[(outcome, seen)]


@pytest.mark.parametrize(
    ("outcome", "first", "reread"),
    list(itertools.product([A, F, T, D, None], list(Seen), list(Seen))),
)
def test_reread_decides_and_first_read_only_marks_stale(
    outcome: DriverOutcome | None, first: Seen, reread: Seen
) -> None:
    got = classify(outcome, first, reread)
    expected = EXPECTED_FINAL[(outcome, reread)]
    if expected is C.OK and first is not Seen.OWN:
        expected = C.STALE
    assert got is expected


def test_acked_but_absent_is_lost() -> None:
    assert classify(A, Seen.ABSENT, Seen.ABSENT) is C.LOST


def test_absent_then_present_on_reread_is_stale_not_lost() -> None:
    assert classify(A, Seen.ABSENT, Seen.OWN) is C.STALE


def test_timed_out_but_present_is_recovered() -> None:
    assert classify(T, Seen.OWN, None) is C.RECOVERED


def test_an_append_applied_twice_is_duplicated_whatever_the_driver_said() -> None:
    for outcome in (A, F, T, D, None):
        assert classify(outcome, Seen.REPEATED, Seen.REPEATED) is C.DUPLICATED
    assert classify(A, Seen.ABSENT, Seen.REPEATED) is C.DUPLICATED  # not stale: twice is wrong


def test_a_duplicated_record_the_app_logged_as_written_is_silent() -> None:
    assert is_silent(C.DUPLICATED, True)
    assert not is_silent(C.DUPLICATED, False)


def test_every_class_but_unexpected_is_reachable_from_a_record() -> None:
    reached = {
        classify(o, f, r)
        for o, f, r in itertools.product([A, F, T, D, None], list(Seen), [*Seen, None])
    }
    assert reached == set(RecordClass) - {C.UNEXPECTED}


@pytest.mark.parametrize("record_class", list(RecordClass))
@pytest.mark.parametrize("logged", [True, False, None])
def test_silent_only_when_app_logged_success_and_not_as_written(
    record_class: RecordClass, logged: bool | None
) -> None:
    assert is_silent(record_class, logged) == (logged is True and record_class in NOT_AS_WRITTEN)


def test_stale_and_recovered_are_never_silent() -> None:
    assert not is_silent(C.STALE, True)
    assert not is_silent(C.RECOVERED, True)
