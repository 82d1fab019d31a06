"""The request throttlers: Java driver 4 semantics, checked against a fake session (pure logic)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import pytest

from astrachaos.config.driver_options import DriverOptions
from astrachaos.driver.throttle import (
    ConcurrencyLimitingThrottler,
    PassThroughThrottler,
    RateLimitingThrottler,
    RequestThrottlingError,
    build_throttler,
)
from astrachaos.driver.throttled import ThrottledSession
from astrachaos.errors import AstrachaosError


class FakeResponse:
    """Stands in for the driver's ResponseFuture: callbacks fire when the test completes it."""

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._result: Any = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._done = False
        self._lock = threading.Lock()

    def add_callbacks(
        self,
        callback: Callable[..., None],
        errback: Callable[..., None],
        callback_args: tuple[Any, ...] = (),
        errback_args: tuple[Any, ...] = (),
    ) -> None:
        self.errback = lambda error: errback(error, *errback_args)

        def fire() -> None:
            if self._error is None:
                callback(self._result, *callback_args)
            else:
                errback(self._error, *errback_args)

        with self._lock:
            if not self._done:
                self._callbacks.append(fire)
                return
        fire()

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._result

    def complete(self, result: Any = None, error: BaseException | None = None) -> None:
        with self._lock:
            self._result, self._error, self._done = result, error, True
            callbacks, self._callbacks = self._callbacks, []
        for fire in callbacks:
            fire()


class FakeSession:
    """Records what was sent and how many requests were open at once."""

    def __init__(self, complete_at_once: bool = False) -> None:
        self.sent: list[FakeResponse] = []
        self.timeouts: list[float | None] = []
        self.open = 0
        self.max_open = 0
        self._complete_at_once = complete_at_once
        self._lock = threading.Lock()

    def execute_async(
        self, statement: Any, parameters: Any = None, timeout: float | None = None
    ) -> FakeResponse:
        response = FakeResponse(statement)
        with self._lock:
            self.sent.append(response)
            self.timeouts.append(timeout)
            self.open += 1
            self.max_open = max(self.max_open, self.open)
        original = response.complete

        def complete(result: Any = None, error: BaseException | None = None) -> None:
            with self._lock:
                self.open -= 1
            original(result, error)

        response.complete = complete  # type: ignore[method-assign]
        if self._complete_at_once:
            response.complete(f"result of {statement.query_string}")
        return response

    def pending(self) -> list[FakeResponse]:
        with self._lock:
            return [r for r in self.sent if not r._done]


def burst(submit: Callable[[int], object], threads: int, per_thread: int) -> None:
    """Submit `threads * per_thread` requests from many threads at once."""
    gate = threading.Barrier(threads)

    def producer(first: int) -> None:
        gate.wait()
        for n in range(first, first + per_thread):
            submit(n)

    workers = [threading.Thread(target=producer, args=(i * per_thread,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def settled(throttled: ThrottledSession, timeout_s: float = 10) -> None:
    """Wait until the completion thread has answered everything (nothing queued or in flight)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        stats = throttled.stats()
        if not stats.in_flight and not stats.queued:
            assert throttled.sync(timeout_s)
            return
        time.sleep(0.005)
    raise AssertionError(f"still busy: {throttled.stats()}")


def eventually(condition: Callable[[], bool], timeout_s: float = 5) -> None:
    """Wait for something the completion thread does."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def complete_all_from_another_thread(session: FakeSession, throttled: ThrottledSession) -> None:
    """Complete every request, including those started by completions, from one other thread."""

    def completer() -> None:
        while True:
            pending = session.pending()
            for response in pending:
                response.complete(f"result of {response.statement.query_string}")
            stats = throttled.stats()
            if not pending and not stats.in_flight and not stats.queued:
                return
            time.sleep(0.001)

    thread = threading.Thread(target=completer)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_a_burst_from_many_threads_respects_both_bounds() -> None:
    session = FakeSession()
    throttled = ThrottledSession(session, ConcurrencyLimitingThrottler(50, 500))
    futures: list[Future[Any]] = []
    lock = threading.Lock()

    def submit(n: int) -> None:
        future = throttled.execute_async(f"insert {n}")
        with lock:
            futures.append(future)

    burst(submit, threads=16, per_thread=200)

    stats = throttled.stats()
    assert (stats.in_flight, stats.queued) == (50, 500)
    assert stats.throttled == 16 * 200 - 550
    assert len(session.sent) == 50

    complete_all_from_another_thread(session, throttled)
    settled(throttled)

    stats = throttled.stats()
    assert session.max_open == 50
    assert (stats.max_in_flight_seen, stats.max_queued_seen) == (50, 500)
    assert (stats.admitted, stats.in_flight, stats.queued) == (550, 0, 0)
    refused = [f for f in futures if isinstance(f.exception(timeout=5), RequestThrottlingError)]
    assert len(refused) == stats.throttled
    assert sum(1 for f in futures if f.exception() is None) == 550


def test_queued_requests_start_in_fifo_order() -> None:
    session = FakeSession()
    throttled = ThrottledSession(session, ConcurrencyLimitingThrottler(1, 100))
    futures = [throttled.execute_async(f"insert {n}") for n in range(20)]
    complete_all_from_another_thread(session, throttled)
    settled(throttled)
    assert [r.statement.query_string for r in session.sent] == [f"insert {n}" for n in range(20)]
    assert [f.result(timeout=5) for f in futures] == [f"result of insert {n}" for n in range(20)]


def test_a_full_queue_fails_at_once_with_its_own_error_class() -> None:
    session = FakeSession()
    throttled = ThrottledSession(session, ConcurrencyLimitingThrottler(1, 1))
    throttled.execute_async("a")
    throttled.execute_async("b")
    refused = throttled.execute_async("c")
    error = refused.exception(timeout=1)  # refused at once, told on the completion thread
    assert isinstance(error, RequestThrottlingError)
    assert not isinstance(error, AstrachaosError)
    assert "max_queue_size=1" in str(error)


def test_stats_count_every_queued_and_throttled_request() -> None:
    throttler = ConcurrencyLimitingThrottler(1, 2)
    throttled = ThrottledSession(FakeSession(), throttler)
    for n in range(5):
        throttled.execute_async(f"insert {n}")
    stats = throttler.stats()
    assert (stats.admitted, stats.queued, stats.throttled) == (1, 2, 2)
    assert (stats.max_in_flight_seen, stats.max_queued_seen) == (1, 2)


def test_driver_errors_reach_the_caller_and_free_the_slot() -> None:
    session = FakeSession()
    throttled = ThrottledSession(session, ConcurrencyLimitingThrottler(1, 10))
    first, second = throttled.execute_async("a"), throttled.execute_async("b")
    session.sent[0].complete(error=ValueError("boom"))
    assert isinstance(first.exception(timeout=5), ValueError)
    assert len(session.sent) == 2  # the queued one started when the slot freed
    session.sent[1].complete("ok")
    assert second.result(timeout=5) == "ok"
    assert throttled.stats().in_flight == 0


def test_text_statements_carry_the_default_idempotence() -> None:
    session = FakeSession(complete_at_once=True)
    ThrottledSession(session, PassThroughThrottler(), default_idempotence=False).execute("a")
    assert session.sent[0].statement.is_idempotent is False


def test_time_in_the_queue_counts_against_the_timeout() -> None:
    from cassandra import OperationTimedOut

    session = FakeSession()
    throttled = ThrottledSession(session, ConcurrencyLimitingThrottler(1, 10), default_timeout_s=5)
    throttled.execute_async("slow")
    late = throttled.execute_async("late", timeout=0.05)
    in_time = throttled.execute_async("in time")
    time.sleep(0.1)
    session.sent[0].complete("done")
    assert isinstance(late.exception(timeout=5), OperationTimedOut)
    eventually(lambda: len(session.sent) == 2)
    assert [r.statement.query_string for r in session.sent] == ["slow", "in time"]
    assert session.timeouts[1] is not None and 4 < session.timeouts[1] < 5
    session.sent[1].complete("ok")
    assert in_time.result(timeout=5) == "ok"


def test_a_request_cancelled_while_queued_is_skipped() -> None:
    session = FakeSession()
    throttled = ThrottledSession(session, ConcurrencyLimitingThrottler(1, 10))
    throttled.execute_async("a")
    cancelled = throttled.execute_async("b")
    throttled.execute_async("c")
    assert cancelled.cancel()
    session.sent[0].complete()
    eventually(lambda: len(session.sent) == 2)
    assert [r.statement.query_string for r in session.sent] == ["a", "c"]


def test_closing_refuses_queued_and_later_requests() -> None:
    session = FakeSession()
    throttled = ThrottledSession(session, ConcurrencyLimitingThrottler(1, 10))
    running, queued = throttled.execute_async("a"), throttled.execute_async("b")
    throttled.close()
    assert isinstance(queued.exception(timeout=1), RequestThrottlingError)
    assert isinstance(throttled.execute_async("c").exception(timeout=1), RequestThrottlingError)
    session.sent[0].complete("ok")
    assert running.result(timeout=1) == "ok"


def test_a_long_queue_of_instant_completions_does_not_recurse() -> None:
    session = FakeSession()
    throttled = ThrottledSession(session, ConcurrencyLimitingThrottler(1, 20_000))
    throttled.execute_async("first")
    session._complete_at_once = True
    futures = [throttled.execute_async(f"insert {n}") for n in range(10_000)]
    session.sent[0].complete("ok")
    settled(throttled)
    assert all(f.done() for f in futures)
    assert throttled.stats().admitted == 10_001


def test_the_rate_limiter_admits_about_n_per_second() -> None:
    session = FakeSession(complete_at_once=True)
    throttled = ThrottledSession(session, RateLimitingThrottler(100, max_queue_size=1000))
    started = time.monotonic()
    futures = [throttled.execute_async(f"insert {n}") for n in range(300)]
    assert 100 <= len(session.sent) <= 150  # about one second's worth at once, like the Java driver
    time.sleep(1.0 - (time.monotonic() - started))
    assert 150 <= len(session.sent) <= 260  # a loaded 2-core machine wakes the drainer late
    for future in futures:
        future.result(timeout=5)
    assert 1.5 <= time.monotonic() - started <= 4.0


def test_the_rate_limiter_queue_is_bounded() -> None:
    frozen = RateLimitingThrottler(10, max_queue_size=5, clock=lambda: 0.0)  # no refill: no timing
    throttled = ThrottledSession(FakeSession(), frozen)
    futures = [throttled.execute_async(f"insert {n}") for n in range(30)]
    throttled.sync(5)
    stats = throttled.stats()
    assert (stats.admitted, stats.queued, stats.throttled) == (10, 5, 15)
    refused = [f for f in futures if f.done() and isinstance(f.exception(), RequestThrottlingError)]
    assert len(refused) == 15
    throttled.close()


def test_pass_through_admits_everything() -> None:
    session = FakeSession()
    throttled = ThrottledSession(session, PassThroughThrottler())
    burst(lambda n: throttled.execute_async(f"insert {n}"), threads=8, per_thread=100)
    assert len(session.sent) == 800
    assert throttled.stats().throttled == 0
    complete_all_from_another_thread(session, throttled)
    settled(throttled)
    assert throttled.stats().in_flight == 0


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (DriverOptions(), ConcurrencyLimitingThrottler),
        (DriverOptions(max_requests_per_second=10), RateLimitingThrottler),
        (DriverOptions(throttler="none"), PassThroughThrottler),
    ],
)
def test_the_options_choose_the_throttler(options: DriverOptions, expected: type) -> None:
    assert isinstance(build_throttler(options), expected)


def test_driver_callbacks_only_hand_the_answer_to_the_completion_thread() -> None:
    session = FakeSession()
    throttled = ThrottledSession(session, ConcurrencyLimitingThrottler(1, 10))
    ran_on: list[str] = []
    throttled.submit("first", lambda _r, _e: ran_on.append(threading.current_thread().name))
    throttled.submit("queued", lambda _r, _e: ran_on.append(threading.current_thread().name))
    io_thread = threading.Thread(target=lambda: session.sent[0].complete("ok"), name="driver-io")
    io_thread.start()
    io_thread.join()
    eventually(lambda: len(session.sent) == 2)  # the next request was started, not by driver-io
    session.sent[1].complete("ok")
    throttled.sync(5)
    assert ran_on == ["astrachaos-completions", "astrachaos-completions"]


def test_an_errback_called_twice_frees_the_slot_once() -> None:
    session = FakeSession()
    throttled = ThrottledSession(session, ConcurrencyLimitingThrottler(1, 10))
    answers: list[BaseException | None] = []
    throttled.submit("a", lambda _r, e: answers.append(e))
    throttled.submit("b", lambda _r, e: answers.append(e))
    throttled.submit("c", lambda _r, e: answers.append(e))
    error = ValueError("connection lost")
    # The driver has been seen calling one request's errback twice (InvalidStateError on main).
    session.sent[0].errback(error)
    session.sent[0].errback(error)
    eventually(lambda: len(session.sent) == 2)
    throttled.sync(5)
    assert answers == [error]
    assert len(session.sent) == 2  # "c" still waits: the slot was freed once, not twice
    stats = throttled.stats()
    assert (stats.in_flight, stats.queued, stats.duplicate_answers) == (1, 1, 1)


def test_queued_requests_expire_in_bulk_on_a_timer() -> None:
    from astrachaos.events import DriverOutcome
    from astrachaos.workload.channel import outcome_of

    session = FakeSession()
    throttled = ThrottledSession(
        session, ConcurrencyLimitingThrottler(1, 100), default_timeout_s=0.05, expiry_interval_s=0.02
    )
    errors: list[BaseException | None] = []
    throttled.submit("stuck", lambda _r, e: None)  # never answered: nothing else frees the slot
    for n in range(50):
        throttled.submit(f"queued {n}", lambda _r, e: errors.append(e))
    eventually(lambda: len(errors) == 50)
    assert len(session.sent) == 1
    assert all(outcome_of(e) is DriverOutcome.DROPPED for e in errors)  # never sent
    assert "timed out in the throttler queue" in str(errors[0])
    stats = throttled.stats()
    assert (stats.expired_in_queue, stats.queued, stats.in_flight) == (50, 0, 1)


def test_in_flight_never_exceeds_the_connection_bound_even_without_a_throttler() -> None:
    session = FakeSession()
    throttled = ThrottledSession(session, PassThroughThrottler(max_in_flight=10))
    futures = [throttled.execute_async(f"insert {n}") for n in range(100)]
    assert len(session.sent) == 10
    complete_all_from_another_thread(session, throttled)
    settled(throttled)
    assert session.max_open == 10
    assert all(f.result(timeout=5) == f"result of insert {n}" for n, f in enumerate(futures))
    assert throttled.stats().throttled == 0


def test_the_host_watch_pairs_each_down_with_the_next_up() -> None:
    from types import SimpleNamespace

    from astrachaos.driver.hosts import HostWatch

    watch = HostWatch()
    host = SimpleNamespace(endpoint=SimpleNamespace(address="127.0.0.1"))
    other = SimpleNamespace(endpoint=SimpleNamespace(address="127.0.0.2"))
    watch.on_up(host)  # at connect: no down to pair
    watch.on_down(host)
    watch.on_down(other)
    watch.on_up(host)
    downs = watch.downs()
    assert [(d.address, d.up_ns is None) for d in downs] == [("127.0.0.1", False), ("127.0.0.2", True)]
    origin = downs[0].down_ns - 34_200_000_000
    assert downs[0].describe(origin).startswith("127.0.0.1 marked down by the driver at 34.2 s, back at ")
    assert downs[1].describe(origin).endswith("not back before the write phase ended")


def test_try_admit_takes_a_slot_only_when_submit_would_start_at_once() -> None:
    throttler = ConcurrencyLimitingThrottler(max_concurrent_requests=2, max_queue_size=5)
    assert throttler.try_admit() and throttler.try_admit()
    assert not throttler.try_admit()  # both slots taken
    started: list[int] = []
    throttler.submit(lambda: started.append(3), lambda e: None)  # queued behind the two
    assert throttler.release() is not None  # the freed slot goes to the queued request
    assert not throttler.try_admit()  # full again: the queue's request took it
    throttler.release()
    assert throttler.try_admit()  # nothing queued, a slot free
    throttler.close()
    throttler.release()
    assert not throttler.try_admit()  # closed: submit would refuse it
    stats = throttler.stats()
    assert (stats.admitted, stats.max_in_flight_seen) == (4, 2)
