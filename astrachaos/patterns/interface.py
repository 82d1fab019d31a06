"""What every application pattern is given and must provide."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from astrachaos.scenario import Pattern
from astrachaos.workload.application import AppPattern
from astrachaos.workload.applog import ApplicationLog
from astrachaos.workload.channel import Channel

__all__ = ["AppPattern", "PatternContext", "SharedAppState", "all_of"]


@dataclass
class SharedAppState:
    """State the writers of one application share (the seed's uploader had a global flag)."""

    warned: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first_warning(self) -> bool:
        """True exactly once: the 'already warned' flag that hides every later failure."""
        with self.lock:
            if self.warned:
                return False
            self.warned = True
            return True


@dataclass
class PatternContext:
    """What a pattern works with: the driver path, its own log, its knobs, retry policy."""

    channel: Channel
    log: ApplicationLog
    spec: Pattern
    shared: SharedAppState
    writer: int
    retry_delay_s: Callable[[int], float]  # backoff before attempt n+1
    is_retryable: Callable[[BaseException], bool]


def all_of(futures: Sequence[Future[None]]) -> Future[None]:
    """A future done when every future is; it fails with the first error seen (whole-batch)."""
    combined: Future[None] = Future()
    if not futures:
        combined.set_result(None)
        return combined
    remaining = [len(futures)]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one_done(future: Future[None]) -> None:
        error = future.exception()
        with lock:
            if error is not None:
                errors.append(error)
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            if errors:
                combined.set_exception(errors[0])
            else:
                combined.set_result(None)

    for future in futures:
        future.add_done_callback(one_done)
    return combined
