"""Which driver errors a careful application retries, and the tenacity retrier it retries with."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

import tenacity

from astrachaos.driver.throttle import RequestThrottlingError

if TYPE_CHECKING:
    from astrachaos.config.driver_options import RetryOptions


@cache
def retryable_errors() -> tuple[type[BaseException], ...]:
    """Errors worth another attempt for an idempotent write: transient, not the request's fault.

    A timeout may mean the write was applied; retrying is only safe when the statement is
    idempotent (a list append retried that way lands twice: `duplicated`, as the shipped
    `duplicate-append` shows). Errors that will fail the same way again (InvalidRequest,
    SyntaxException, Unauthorized, AuthenticationFailed, WriteFailure, ...) are not retried.
    """
    from cassandra import OperationTimedOut, ReadTimeout, Unavailable, WriteTimeout
    from cassandra.cluster import NoHostAvailable
    from cassandra.connection import ConnectionBusy, ConnectionShutdown
    from cassandra.pool import NoConnectionsAvailable
    from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage, ServerError

    return (
        WriteTimeout,
        ReadTimeout,
        Unavailable,
        OperationTimedOut,
        OverloadedErrorMessage,
        IsBootstrappingErrorMessage,
        ServerError,
        NoHostAvailable,
        NoConnectionsAvailable,
        ConnectionShutdown,
        ConnectionBusy,
        RequestThrottlingError,
    )


def is_retryable(error: BaseException) -> bool:
    """True when a careful application should retry an idempotent request that raised `error`."""
    return isinstance(error, retryable_errors())


def build_retrying(
    options: RetryOptions,
    *,
    sleep: Callable[[float], None] = time.sleep,
    before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
) -> tenacity.Retrying:
    """Exponential backoff with jitter over retryable errors, `options.max_attempts` in all.

    The pause before attempt n+1 is min(base * 2**(n-1) + uniform(0, base), max); the last
    error is re-raised unchanged. The driver-level policy (`options.policy`) is applied by the
    session factory; this is the application's own retry loop.
    """
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(options.max_attempts),
        wait=backoff(options.base_delay_ms / 1000, options.max_delay_ms / 1000),
        retry=tenacity.retry_if_exception(is_retryable),
        reraise=True,
        sleep=sleep,
        before_sleep=before_sleep,
    )


def backoff(base_s: float, max_s: float) -> Callable[[tenacity.RetryCallState], float]:
    """Exponential backoff with jitter: min(base * 2**(n-1) + uniform(0, base), max) seconds."""

    def wait(state: tenacity.RetryCallState) -> float:
        exponential = base_s * 2.0 ** (state.attempt_number - 1)
        return min(exponential + random.uniform(0, base_s), max_s)

    return wait
