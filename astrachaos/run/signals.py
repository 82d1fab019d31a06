"""SIGINT and SIGTERM: every active run rolls its faults back at once, then stops writing.

A signal first reaches each run's `interrupt`, which starts the rollback on a thread of its own
(a paused node is resumed within the second, not after the writers have drained). A run that is
writing winds down by itself; anything else (connecting, verifying), and a second signal, gets
a KeyboardInterrupt, which every exit path already turns into rollback and exit 130.
"""

from __future__ import annotations

import signal
import threading
from typing import Protocol


class Interruptible(Protocol):
    """A run that can be told to stop."""

    def interrupt(self) -> bool:
        """Start rolling back at once; True when the run then winds down by itself."""
        ...


_active: set[Interruptible] = set()
_lock = threading.RLock()  # re-entrant: the handler runs on the main thread, which may hold it
_seen = 0


def register(run: Interruptible) -> None:
    """`run` is in progress: a stop signal reaches it."""
    with _lock:
        _active.add(run)


def unregister(run: Interruptible) -> None:
    """`run` ended."""
    with _lock:
        _active.discard(run)


def install() -> None:
    """Handle SIGINT and SIGTERM from now on (call from the main thread, as the CLI does)."""
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def _on_signal(signum: int, frame: object) -> None:
    global _seen
    _seen += 1
    with _lock:
        runs = list(_active)
    winding_down = [run.interrupt() for run in runs]
    if _seen > 1 or not runs or not all(winding_down):
        raise KeyboardInterrupt
