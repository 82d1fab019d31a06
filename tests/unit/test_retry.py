"""Retry helpers: which errors a careful application retries, and how it backs off."""

from __future__ import annotations

import pytest
from cassandra import (
    AuthenticationFailed,
    InvalidRequest,
    OperationTimedOut,
    Unauthorized,
    Unavailable,
    WriteFailure,
    WriteTimeout,
    WriteType,
)
from cassandra.cluster import NoHostAvailable
from cassandra.protocol import OverloadedErrorMessage, SyntaxException

from astrachaos.config.driver_options import RetryOptions
from astrachaos.driver.retry import build_retrying, is_retryable
from astrachaos.driver.throttle import RequestThrottlingError


@pytest.mark.parametrize(
    "error",
    [
        WriteTimeout("replica did not answer", write_type=WriteType.SIMPLE),
        Unavailable("not enough replicas"),
        OperationTimedOut("client timeout"),
        OverloadedErrorMessage(0x1001, "overloaded", None),
        NoHostAvailable("no host", {}),
        RequestThrottlingError("queue full"),
    ],
    ids=type,
)
def test_transient_errors_are_retryable(error: BaseException) -> None:
    assert is_retryable(error)


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequest("bad cql"),
        SyntaxException(0x2000, "syntax", None),
        Unauthorized("no"),
        AuthenticationFailed("no"),
        WriteFailure("replica failed", write_type=WriteType.SIMPLE),
        ValueError("a bug"),
    ],
    ids=type,
)
def test_errors_that_would_fail_again_are_not_retryable(error: BaseException) -> None:
    assert not is_retryable(error)


def test_retries_stop_after_max_attempts_and_reraise_the_last_error() -> None:
    pauses: list[float] = []
    attempts = []
    retrying = build_retrying(RetryOptions(max_attempts=4), sleep=pauses.append)

    def write() -> None:
        attempts.append(1)
        raise WriteTimeout(f"attempt {len(attempts)}", write_type=WriteType.SIMPLE)

    with pytest.raises(WriteTimeout, match="attempt 4"):
        retrying(write)
    assert len(attempts) == 4
    assert len(pauses) == 3


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling() -> None:
    pauses: list[float] = []
    options = RetryOptions(max_attempts=8, base_delay_ms=100, max_delay_ms=1000)
    retrying = build_retrying(options, sleep=pauses.append)

    def write() -> None:
        raise Unavailable("down")

    with pytest.raises(Unavailable):
        retrying(write)
    for n, pause in enumerate(pauses[:3]):
        assert 0.1 * 2**n <= pause <= 0.1 * 2**n + 0.1
    assert all(p <= 1.0 for p in pauses)
    assert pauses[-1] == pytest.approx(1.0)


def test_a_non_retryable_error_is_raised_at_once() -> None:
    attempts = []
    retrying = build_retrying(RetryOptions(max_attempts=5), sleep=lambda _s: None)

    def write() -> None:
        attempts.append(1)
        raise InvalidRequest("bad")

    with pytest.raises(InvalidRequest):
        retrying(write)
    assert len(attempts) == 1


def test_success_after_transient_errors_returns_the_result() -> None:
    outcomes: list[BaseException | str] = [OperationTimedOut("slow"), Unavailable("down"), "ok"]
    retried: list[int] = []
    retrying = build_retrying(
        RetryOptions(max_attempts=5),
        sleep=lambda _s: None,
        before_sleep=lambda state: retried.append(state.attempt_number),
    )

    def write() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert retrying(write) == "ok"
    assert retried == [1, 2]
