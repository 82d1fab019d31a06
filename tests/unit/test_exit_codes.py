"""One exit-code decision: the severity order in errors.py, as runs, `run a b` and suites use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrachaos.errors import SEVERITY, ExitCode, Interrupted, worst
from astrachaos.run.result import ExpectationOutcome
from astrachaos.run.suite import EntryOutcome, suite_exit_code
from astrachaos.run.verdict import decide_exit_code
from astrachaos.verify.partitions import Verification

OK, UNMET, INCONCLUSIVE = ExitCode.OK, ExitCode.EXPECTATIONS_UNMET, ExitCode.INCONCLUSIVE


def test_every_exit_code_has_one_place_in_the_order() -> None:
    assert sorted(SEVERITY) == sorted(ExitCode)
    assert SEVERITY[0] is OK and SEVERITY[-1] is ExitCode.INTERRUPTED
    assert Interrupted("x").exit_code is ExitCode.INTERRUPTED


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([], OK),
        ([OK, OK], OK),
        ([OK, UNMET, OK], UNMET),  # a later clean scenario does not hide an earlier loss
        ([UNMET, INCONCLUSIVE], INCONCLUSIVE),
        ([INCONCLUSIVE, ExitCode.ENVIRONMENT, UNMET], ExitCode.ENVIRONMENT),
        ([ExitCode.ROLLBACK_FAILED, ExitCode.ENVIRONMENT], ExitCode.ROLLBACK_FAILED),
        ([6, 130, 0], ExitCode.INTERRUPTED),
        ([1, 3], ExitCode.INVALID_SCENARIO),
    ],
)
def test_the_most_severe_code_wins(codes: list[int], expected: ExitCode) -> None:
    assert worst(codes) is expected
    assert worst(reversed(codes)) is expected  # order of the scenarios does not matter


def _budget(met: bool) -> ExpectationOutcome:
    return ExpectationOutcome("lost", 0, 0 if met else 3, met)


def test_a_run_is_inconclusive_when_any_side_left_buckets_unread() -> None:
    read, unread = Verification(), Verification(unread_buckets=[4])
    assert decide_exit_code([_budget(True)], read) is OK
    assert decide_exit_code([_budget(True)], read, unread) is INCONCLUSIVE
    # A budget broken on what was read is proven; unread buckets cannot make it less certain.
    assert decide_exit_code([_budget(False)], read) is UNMET
    assert decide_exit_code([_budget(False)], read, unread) is UNMET


def _entry(expected: int, actual: int) -> EntryOutcome:
    return EntryOutcome(f"e{expected}{actual}", expected, actual, Path("."), "")


def test_suite_of_mixed_outcomes() -> None:
    # Each entry gave the code it must give, including expected losses: the suite passes.
    assert suite_exit_code([_entry(0, 0), _entry(1, 1), _entry(5, 5)], 3) is OK
    # An entry that passed where it had to fail counts as unmet expectations.
    assert suite_exit_code([_entry(0, 0), _entry(1, 0)], 2) is UNMET
    # Several failing entries: the most severe failure decides, not the first or the last.
    assert suite_exit_code([_entry(0, 1), _entry(0, 4), _entry(0, 5)], 3) is ExitCode.ENVIRONMENT
    assert suite_exit_code([_entry(0, 6), _entry(0, 1)], 2) is ExitCode.ROLLBACK_FAILED
    # Entries not run (fail-fast) leave the suite failing.
    assert suite_exit_code([_entry(0, 0)], 2) is UNMET
