"""Client-side request throttlers with the Java driver 4 semantics, and a session that uses one.

The Python driver has no throttler. The Java driver's ConcurrencyLimitingRequestThrottler and
RateLimitingRequestThrottler admit a request when a slot (or a permit) is free, otherwise park
it in a bounded FIFO queue, and fail it at once with RequestThrottlingError when the queue
is full. These classes do the same; `driver.throttled.ThrottledSession` puts one in front of a
driver session.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from astrachaos.config.driver_options import DriverOptions

log = logging.getLogger(__name__)

Start = Callable[[], None]
Reject = Callable[[BaseException], None]
UNBOUNDED = 1 << 62


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
    expired_in_queue: int = 0  # failed with a timeout before they were ever sent
    duplicate_answers: int = 0  # driver callbacks for a request already answered (ignored)


@dataclass(slots=True)
class _Waiting:
    start: Start
    reject: Reject
    deadline: float | None


class RequestThrottler(ABC):
    """Admits, queues or refuses requests; `release` is called once per admitted request.

    `max_in_flight` bounds requests in flight whatever the throttler (the driver's connections
    have a finite number of stream ids): beyond it requests wait in the queue. Nothing here
    starts a request by itself except `submit` (on the caller's thread) and the rate throttler's
    drain thread: `release` returns the next request to start, and its caller starts it.
    """

    def __init__(self, max_queue_size: int, max_in_flight: int = UNBOUNDED) -> None:
        self._max_queue = max_queue_size
        self._cap = max_in_flight
        self._lock = threading.Lock()
        self._queue: deque[_Waiting] = deque()
        self._closed = False
        self._admitted = self._in_flight = self._throttled = self._expired = 0
        self._max_in_flight = self._max_queued = 0

    @abstractmethod
    def _admissible_locked(self) -> bool:
        """Whether one more request may start now (takes a permit if it may)."""

    @abstractmethod
    def _full_message(self) -> str:
        """Why a request was refused."""

    def submit(self, start: Start, reject: Reject, deadline: float | None = None) -> None:
        """Call `start` now (on this thread) or later (FIFO), or `reject` now if full or closed."""
        queued = now = False
        with self._lock:
            if self._closed:
                self._throttled += 1
            elif not self._queue and self._admissible_locked():
                self._admit_locked()
                now = True
            elif len(self._queue) < self._max_queue:
                self._queue.append(_Waiting(start, reject, deadline))
                self._max_queued = max(self._max_queued, len(self._queue))
                queued = True
                self._queued_locked()
            else:
                self._throttled += 1
        if now:
            start()
        elif not queued:
            reject(RequestThrottlingError(self._full_message()))

    def try_admit(self) -> bool:
        """Admit a request now if one may start and none waits before it (no callables made).

        False: the caller goes through `submit`, which queues or refuses it.
        """
        with self._lock:
            if self._closed or self._queue or not self._admissible_locked():
                return False
            self._admitted += 1
            self._in_flight += 1
            if self._in_flight > self._max_in_flight:
                self._max_in_flight = self._in_flight
            return True

    def release(self) -> Start | None:
        """An admitted request finished: the start of the request that takes its slot, if any."""
        with self._lock:
            self._in_flight -= 1
            if self._queue and self._admissible_locked():
                self._admit_locked()
                return self._queue.popleft().start
        return None

    def expire(self, now: float) -> list[Reject]:
        """Take the queued requests whose deadline has passed, oldest first, in one step.

        Requests share the profile's timeout, so the expired ones are at the head of the queue;
        one with a shorter timeout further back is caught when it starts.
        """
        expired: list[Reject] = []
        with self._lock:
            waiting = self._queue
            while waiting and waiting[0].deadline is not None and waiting[0].deadline <= now:
                expired.append(waiting.popleft().reject)
            self._expired += len(expired)
        return expired

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
                expired_in_queue=self._expired,
            )

    @property
    def idle(self) -> bool:
        """Closed, with nothing queued or in flight."""
        with self._lock:
            return self._closed and not self._queue and not self._in_flight

    def close(self) -> None:
        """Refuse what is queued and everything submitted from now on."""
        with self._lock:
            self._closed = True
            refused = list(self._queue)
            self._queue.clear()
            self._throttled += len(refused)
        for waiting in refused:
            waiting.reject(RequestThrottlingError("the session closed while the request was queued"))

    def _queued_locked(self) -> None:  # noqa: B027 (a hook; most throttlers need nothing)
        """A request was just queued (the rate throttler starts its drain thread)."""

    def _admit_locked(self) -> None:
        self._admitted += 1
        self._in_flight += 1
        if self._in_flight > self._max_in_flight:
            self._max_in_flight = self._in_flight


class ConcurrencyLimitingThrottler(RequestThrottler):
    """At most `max_concurrent_requests` in flight; then a FIFO queue of `max_queue_size`."""

    def __init__(
        self, max_concurrent_requests: int, max_queue_size: int, max_in_flight: int = UNBOUNDED
    ) -> None:
        super().__init__(max_queue_size, max_in_flight)
        self._max_concurrent = max_concurrent_requests
        self._limit = min(max_concurrent_requests, max_in_flight)

    def _admissible_locked(self) -> bool:
        return self._in_flight < self._limit

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
        max_in_flight: int = UNBOUNDED,
    ) -> None:
        super().__init__(max_queue_size, max_in_flight)
        self._rate = max_requests_per_second
        self._drain_interval = drain_interval_s
        self._clock = clock
        self._permits = float(max_requests_per_second)  # like Java: one second's worth at start
        self._last = clock()
        self._draining = False

    def _admissible_locked(self) -> bool:
        if self._in_flight >= self._cap:
            return False
        now = self._clock()
        self._permits = min(self._permits + (now - self._last) * self._rate, float(self._rate))
        self._last = now
        if self._permits >= 1:
            self._permits -= 1
            return True
        return False

    def _queued_locked(self) -> None:
        if not self._draining:
            self._draining = True
            threading.Thread(target=self._drain, name="astrachaos-throttle-drain", daemon=True).start()

    def _drain(self) -> None:
        while True:
            time.sleep(self._drain_interval)
            starts: list[Start] = []
            with self._lock:
                while self._queue and self._admissible_locked():
                    starts.append(self._queue.popleft().start)
                    self._admit_locked()
                self._draining = bool(self._queue)
            for start in starts:
                start()
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
    """No throttling (`throttler: none`): only counts, and keeps `max_in_flight` (unbounded queue)."""

    def __init__(self, max_in_flight: int = UNBOUNDED) -> None:
        super().__init__(UNBOUNDED, max_in_flight)

    def _admissible_locked(self) -> bool:
        return self._in_flight < self._cap

    def _full_message(self) -> str:
        return "the session is closed"


def build_throttler(options: DriverOptions, max_in_flight: int = UNBOUNDED) -> RequestThrottler:
    """The throttler the driver options ask for, never above `max_in_flight` in flight."""
    match options.throttler:
        case "concurrency":
            return ConcurrencyLimitingThrottler(
                options.max_concurrent_requests, options.max_queue_size, max_in_flight
            )
        case "rate":
            assert options.max_requests_per_second is not None  # the model enforces it
            return RateLimitingThrottler(
                options.max_requests_per_second, options.max_queue_size, max_in_flight=max_in_flight
            )
        case "none":
            return PassThroughThrottler(max_in_flight)
