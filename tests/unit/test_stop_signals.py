"""SIGINT/SIGTERM reach every active run first; a run that is not writing, or a second signal,
gets a KeyboardInterrupt."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from astrachaos.run import signals


class _Run:
    def __init__(self, winds_down: bool) -> None:
        self.winds_down = winds_down
        self.interrupted = 0

    def interrupt(self) -> bool:
        self.interrupted += 1
        return self.winds_down


@pytest.fixture(autouse=True)
def handlers() -> Iterator[None]:
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signals._seen = 0
    signals.install()
    yield
    signal.signal(signal.SIGINT, saved[0])
    signal.signal(signal.SIGTERM, saved[1])
    signals._seen = 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_writing_run_is_told_first_and_winds_down_by_itself(stop: signal.Signals) -> None:
    run = _Run(winds_down=True)
    signals.register(run)
    try:
        os.kill(os.getpid(), stop)  # no KeyboardInterrupt: the run stops on its own
        assert run.interrupted == 1
        with pytest.raises(KeyboardInterrupt):  # a second signal does not wait any longer
            os.kill(os.getpid(), stop)
        assert run.interrupted == 2
    finally:
        signals.unregister(run)


def test_a_run_that_is_not_writing_is_told_and_interrupted() -> None:
    run = _Run(winds_down=False)
    signals.register(run)
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
        assert run.interrupted == 1
    finally:
        signals.unregister(run)


def test_without_a_run_a_signal_is_a_plain_interrupt() -> None:
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
