"""Client-side request throttlers with the Java driver 4 semantics, and a session that uses one.

The Python driver has no throttler. The Java driver's ConcurrencyLimitingRequestThrottler and
RateLimitingRequestThrottler admit a request when a slot (or a permit) is free, otherwise park
it in a bounded FIFO queue, and fail it at once with RequestThrottlingException when the queue
is full. These classes do the same; `ThrottledSession` puts one in front of a driver session.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from astrachaos.config.driver_options import DriverOptions

log = logging.getLogger(__name__)

Start = Callable[[], None]


class RequestThrottlingError(Exception):
    """The throttler refused a request: its queue was full or it was closed (Java's
    RequestThrottlingException). The simulated application sees this; it is not a tool error."""


@dataclass(frozen=True)
class ThrottlerStats:
    """Counters of one throttler at one moment."""

    admitted: int
    in_flight: int
    queued: int
    throttled: int
    max_in_flight_seen: int
    max_queued_seen: int


Reject = Callable[[RequestThrottlingError], None]


@dataclass
class _Waiting:
    start: Start
    reject: Reject


class RequestThrottler(ABC):
    """Admits, queues or refuses requests; `release` is called once per admitted request.

    Shared here: the counters, the bounded queue, and running starts outside the lock without
    recursion.
    """

    def __init__(self, max_queue_size: int) -> None:
        self._max_queue = max_queue_size
        self._lock = threading.Lock()
        self._queue: deque[_Waiting] = deque()
        self._local = threading.local()
        self._closed = False
        self._admitted = self._in_flight = self._throttled = 0
        self._max_in_flight = self._max_queued = 0

    @abstractmethod
    def submit(self, start: Start, reject: Reject) -> None:
        """Call `start` now or later (FIFO), or `reject` now if the queue is full or closed."""

    @abstractmethod
    def release(self) -> None:
        """An admitted request finished (success, error or timeout)."""

    def stats(self) -> ThrottlerStats:
        """The counters now."""
        with self._lock:
            return ThrottlerStats(
                admitted=self._admitted,
                in_flight=self._in_flight,
                queued=len(self._queue),
                throttled=self._throttled,
                max_in_flight_seen=self._max_in_flight,
                max_queued_seen=self._max_queued,
            )

    def close(self) -> None:
        """Refuse what is queued and everything submitted from now on."""
        with self._lock:
            self._closed = True
            refused = list(self._queue)
            self._queue.clear()
            self._throttled += len(refused)
        for waiting in refused:
            waiting.reject(
                RequestThrottlingError("the session closed while the request was queued")
            )

    def _admit_locked(self) -> None:
        self._admitted += 1
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)

    def _enqueue_locked(self, waiting: _Waiting) -> bool:
        if self._closed or len(self._queue) >= self._max_queue:
            self._throttled += 1
            return False
        self._queue.append(waiting)
        self._max_queued = max(self._max_queued, len(self._queue))
        return True

    def _admit_queue_or_refuse(self, now: bool, queued: bool, start: Start, reject: Reject) -> None:
        """Act, outside the lock, on what `submit` decided under it."""
        if now:
            self._run(start)
        elif not queued:
            self._refuse(reject, self._full_message())

    def _full_message(self) -> str:
        raise NotImplementedError

    def _refuse(self, reject: Reject, why: str) -> None:
        reject(RequestThrottlingError(why))

    def _run(self, start: Start) -> None:
        # A start may finish at once and release, which starts the next: run those in a loop
        # on this thread instead of recursing (a queue of 25,000 would overflow the stack).
        pending: deque[Start] | None = getattr(self._local, "pending", None)
        if pending is not None:
            pending.append(start)
            return
        pending = self._local.pending = deque([start])
        try:
            while pending:
                action = pending.popleft()
                try:
                    action()
                except Exception:
                    log.exception("starting a throttled request failed")
        finally:
            self._local.pending = None


class ConcurrencyLimitingThrottler(RequestThrottler):
    """At most `max_concurrent_requests` in flight; then a FIFO queue of `max_queue_size`."""

    def __init__(self, max_concurrent_requests: int, max_queue_size: int) -> None:
        super().__init__(max_queue_size)
        self._max_concurrent = max_concurrent_requests

    def submit(self, start: Start, reject: Reject) -> None:
        """Start now if a slot is free, else queue, else refuse."""
        queued = False
        with self._lock:
            now = not self._closed and not self._queue and self._in_flight < self._max_concurrent
            if now:
                self._admit_locked()
            else:
                queued = self._enqueue_locked(_Waiting(start, reject))
        self._admit_queue_or_refuse(now, queued, start, reject)

    def release(self) -> None:
        """Hand the freed slot to the oldest queued request, if any."""
        with self._lock:
            waiting = self._queue.popleft() if self._queue else None
            if waiting is None:
                self._in_flight -= 1
            else:
                self._admitted += 1  # the slot passes on; in_flight is unchanged
        if waiting is not None:
            self._run(waiting.start)

    def _full_message(self) -> str:
        if self._closed:
            return "the session is closed"
        return (
            "the session reached its capacity (max_concurrent_requests="
            f"{self._max_concurrent}, max_queue_size={self._max_queue})"
        )


class RateLimitingThrottler(RequestThrottler):
    """At most `max_requests_per_second` starts a second; then a FIFO queue, drained on a timer."""

    def __init__(
        self,
        max_requests_per_second: int,
        max_queue_size: int,
        drain_interval_s: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_queue_size)
        self._rate = max_requests_per_second
        self._drain_interval = drain_interval_s
        self._clock = clock
        self._permits = float(max_requests_per_second)  # like Java: one second's worth at start
        self._last = clock()
        self._draining = False

    def submit(self, start: Start, reject: Reject) -> None:
        """Start now if a permit is free, else queue, else refuse."""
        drain = queued = False
        with self._lock:
            now = not self._closed and not self._queue and self._acquire_locked()
            if now:
                self._admit_locked()
            else:
                queued = self._enqueue_locked(_Waiting(start, reject))
                drain = queued and not self._draining
                self._draining = self._draining or drain
        if drain:
            threading.Thread(
                target=self._drain, name="astrachaos-throttle-drain", daemon=True
            ).start()
        self._admit_queue_or_refuse(now, queued, start, reject)

    def release(self) -> None:
        """A request finished; the rate does not depend on it."""
        with self._lock:
            self._in_flight -= 1

    def _acquire_locked(self) -> bool:
        now = self._clock()
        self._permits = min(self._permits + (now - self._last) * self._rate, float(self._rate))
        self._last = now
        if self._permits >= 1:
            self._permits -= 1
            return True
        return False

    def _drain(self) -> None:
        while True:
            time.sleep(self._drain_interval)
            starts: list[Start] = []
            with self._lock:
                while self._queue and self._acquire_locked():
                    starts.append(self._queue.popleft().start)
                    self._admit_locked()
                self._draining = bool(self._queue)
            for start in starts:
                self._run(start)
            if not self._draining:
                return

    def _full_message(self) -> str:
        if self._closed:
            return "the session is closed"
        return (
            "the session reached its capacity (max_requests_per_second="
            f"{self._rate}, max_queue_size={self._max_queue})"
        )


class PassThroughThrottler(RequestThrottler):
    """No throttling (`throttler: none`); only counts."""

    def __init__(self) -> None:
        super().__init__(0)

    def submit(self, start: Start, reject: Reject) -> None:
        """Start at once (refuse only after close)."""
        with self._lock:
            closed = self._closed
            if closed:
                self._throttled += 1
            else:
                self._admit_locked()
        if closed:
            self._refuse(reject, "the session is closed")
        else:
            self._run(start)

    def release(self) -> None:
        """A request finished."""
        with self._lock:
            self._in_flight -= 1


def build_throttler(options: DriverOptions) -> RequestThrottler:
    """The throttler the driver options ask for."""
    match options.throttler:
        case "concurrency":
            return ConcurrencyLimitingThrottler(
                options.max_concurrent_requests, options.max_queue_size
            )
        case "rate":
            assert options.max_requests_per_second is not None  # the model enforces it
            return RateLimitingThrottler(options.max_requests_per_second, options.max_queue_size)
        case "none":
            return PassThroughThrottler()


class ThrottledSession:
    """A driver session behind a throttler: `execute_async` returns a concurrent Future."""

    def __init__(
        self,
        session: Any,
        throttler: RequestThrottler,
        *,
        default_timeout_s: float | None = None,
        default_idempotence: bool = True,
    ) -> None:
        self.session = session
        self.throttler = throttler
        self._timeout = default_timeout_s
        self._idempotent = default_idempotence

    def execute_async(
        self, statement: Any, parameters: Any = None, timeout: float | None = None
    ) -> Future[Any]:
        """Submit through the throttler; the future gets the driver's result or its exception.

        The timeout (default: the profile's request timeout) counts from this call, so time
        spent in the throttler queue counts against it, as in the Java driver.
        """
        future: Future[Any] = Future()
        timeout_s = self._timeout if timeout is None else timeout
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        statement = self._as_statement(statement)
        self.throttler.submit(
            lambda: self._start(future, statement, parameters, deadline),
            lambda error: _fail(future, error),
        )
        return future

    def execute(self, statement: Any, parameters: Any = None, timeout: float | None = None) -> Any:
        """Submit through the throttler and wait for the driver's result."""
        return self.execute_async(statement, parameters, timeout).result()

    def stats(self) -> ThrottlerStats:
        """The throttler's counters."""
        return self.throttler.stats()

    def close(self) -> None:
        """Refuse queued and future requests (in-flight ones finish in the driver)."""
        self.throttler.close()

    def _as_statement(self, statement: Any) -> Any:
        if isinstance(statement, str):
            from cassandra.query import SimpleStatement

            return SimpleStatement(statement, is_idempotent=self._idempotent)
        return statement

    def _start(
        self, future: Future[Any], statement: Any, parameters: Any, deadline: float | None
    ) -> None:
        if not future.set_running_or_notify_cancel():  # cancelled while queued
            self.throttler.release()
            return
        kwargs: dict[str, float] = {}
        if deadline is not None:
            kwargs["timeout"] = deadline - time.monotonic()
            if kwargs["timeout"] <= 0:
                self.throttler.release()
                future.set_exception(_timed_out_in_queue())
                return
        try:
            response = self.session.execute_async(statement, parameters, **kwargs)
        except Exception as error:
            self.throttler.release()
            future.set_exception(error)
            return
        response.add_callbacks(
            self._succeeded, self._failed, callback_args=(future, response), errback_args=(future,)
        )

    def _succeeded(self, _rows: Any, future: Future[Any], response: Any) -> None:
        self.throttler.release()
        try:
            result = response.result()  # already done: wraps the rows in a pageable ResultSet
        except Exception as error:
            future.set_exception(error)
        else:
            future.set_result(result)

    def _failed(self, error: BaseException, future: Future[Any]) -> None:
        self.throttler.release()
        future.set_exception(error)


def _fail(future: Future[Any], error: BaseException) -> None:
    with contextlib.suppress(InvalidStateError):  # cancelled while queued: nobody to tell
        future.set_exception(error)


def _timed_out_in_queue() -> Exception:
    from cassandra import OperationTimedOut

    error: Exception = OperationTimedOut("the request timed out in the throttler queue")
    return error
