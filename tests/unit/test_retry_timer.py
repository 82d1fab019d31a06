"""The uploader's retry-forever keeps its pending retries in one heap on one thread."""

from __future__ import annotations

import threading
import time

from astrachaos.patterns.retry_timer import RetryTimer


def test_ten_thousand_pending_retries_use_one_thread() -> None:
    timer = RetryTimer("test-retries")
    before = threading.active_count()
    for _ in range(10_000):
        assert timer.call_later(60, lambda: None)
    assert threading.active_count() <= before + 1
    assert timer.pending == 10_000
    assert timer.cancel_all() == 10_000


def test_retries_run_after_their_delay_in_due_order() -> None:
    timer = RetryTimer("test-retries")
    ran: list[str] = []
    done = threading.Event()
    began = time.monotonic()
    timer.call_later(0.3, lambda: (ran.append("late"), done.set()))
    timer.call_later(0.1, lambda: ran.append("early"))
    timer.call_later(0.2, lambda: ran.append("middle"))
    assert done.wait(5)
    assert ran == ["early", "middle", "late"]
    assert time.monotonic() - began >= 0.3
    timer.cancel_all()


def test_a_failing_retry_does_not_stop_the_later_ones() -> None:
    timer = RetryTimer("test-retries")
    done = threading.Event()

    def broken() -> None:
        raise RuntimeError("boom")

    timer.call_later(0.01, broken)
    timer.call_later(0.05, done.set)
    assert done.wait(5)
    timer.cancel_all()


def test_shutdown_drops_pending_retries_and_refuses_new_ones() -> None:
    timer = RetryTimer("test-retries")
    ran = threading.Event()
    timer.call_later(0.2, ran.set)
    assert timer.cancel_all() == 1
    assert not timer.call_later(0.0, ran.set)
    assert not ran.wait(0.4)
