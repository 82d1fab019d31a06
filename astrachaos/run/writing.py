"""What a write phase hands its writers, in the runner's process or in a writer process.

One application pattern per writer (with the retry backoff every pattern shares), the trigger
of a mid-stream session reset, and the time budget `workload.max_duration_s`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from astrachaos.driver.retry import is_retryable
from astrachaos.patterns.interface import AppPattern, PatternContext, SharedAppState
from astrachaos.patterns.registry import build
from astrachaos.scenario import Scenario
from astrachaos.workload.applog import ApplicationLog


def build_patterns(
    scenario: Scenario,
    channel: Any,
    app_log: ApplicationLog,
    writers: Iterable[int],
    *,
    table: str,
    run_id: str,
    session_factory: Callable[[int], Any] | None = None,
) -> dict[int, AppPattern]:
    """The application pattern of each writer in `writers`, sharing one app state.

    `session_factory(writer)`: the session a user's own pattern writes through (`ctx.session`).
    """
    import tenacity  # a writer process imports it only when it builds its patterns

    shared = SharedAppState()
    wait = tenacity.wait_exponential_jitter(multiplier=0.05, max=2.0)

    def retry_delay_s(attempt: int) -> float:
        state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = attempt
        return float(wait(state))

    return {
        w: build(
            PatternContext(
                channel=channel,
                log=app_log,
                spec=scenario.pattern,
                shared=shared,
                writer=w,
                retry_delay_s=retry_delay_s,
                is_retryable=is_retryable,
                table=table,
                run_id=run_id,
                session_factory=None if session_factory is None else _for_writer(session_factory, w),
            )
        )
        for w in writers
    }


def _for_writer(factory: Callable[[int], Any], writer: int) -> Callable[[], Any]:
    return lambda: factory(writer)


def reset_trigger(scenario: Scenario, reset: Callable[[], None]) -> Callable[[int], None]:
    """`pattern.session_reset`: called with the records handed over so far, it resets once."""
    spec = scenario.pattern.session_reset
    if spec is None:
        return lambda total: None
    fired = threading.Event()

    def maybe_reset(total: int) -> None:
        if total >= spec.after_records and not fired.is_set():
            fired.set()
            reset()

    return maybe_reset


class _Stop(Protocol):
    """A stop flag: a threading.Event, or a multiprocessing one shared with writer processes."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...


class WriteBudget:
    """`workload.max_duration_s`: when it runs out, the writers stop handing over records."""

    def __init__(self, seconds: float | None, stop: _Stop) -> None:
        self.seconds = seconds or 0.0
        self.reached = False
        self._stop = stop
        self._timer: threading.Timer | None = None
        if seconds:
            self._timer = threading.Timer(seconds, self._run_out)
            self._timer.daemon = True
            self._timer.start()

    def _run_out(self) -> None:
        if not self._stop.is_set():
            self.reached = True
            self._stop.set()

    def cancel(self) -> None:
        """The writers ended first (or were interrupted)."""
        if self._timer is not None:
            self._timer.cancel()
