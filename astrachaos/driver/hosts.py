"""What the driver decided about hosts during a run: marked down, back up (its own listeners).

The driver convicts a host when a connection fails or heartbeats go unanswered, also under a
load the host itself survives. A run that lost its host says so, with the times, instead of
leaving only a pile of NoHostAvailable errors to explain.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class HostDown:
    """One time the driver marked a host down; `up_ns` None: it never came back in the run."""

    address: str
    down_ns: int  # time.monotonic_ns(), as the ledger's times
    up_ns: int | None

    def describe(self, origin_ns: int) -> str:
        """'127.0.0.1 marked down at 34.2 s, back at 36.0 s' (seconds since `origin_ns`)."""
        down = f"{self.address} marked down by the driver at {(self.down_ns - origin_ns) / 1e9:.1f} s"
        if self.up_ns is None:
            return down + ", not back before the write phase ended"
        return down + f", back at {(self.up_ns - origin_ns) / 1e9:.1f} s"


class HostWatch:
    """A driver host-state listener (on_up, on_down, on_add, on_remove) that records changes.

    The driver calls it from its own threads, the I/O thread included: it only appends.
    """

    def __init__(self) -> None:
        self._changes: list[tuple[str, bool, int]] = []
        self._lock = threading.Lock()

    def on_up(self, host: Any) -> None:
        """The driver marked `host` up."""
        self._note(host, True)

    def on_down(self, host: Any) -> None:
        """The driver marked `host` down."""
        self._note(host, False)

    def on_add(self, host: Any) -> None:
        """A host joined the cluster's metadata (not a state change of ours)."""

    def on_remove(self, host: Any) -> None:
        """A host left the cluster's metadata."""

    def downs(self) -> list[HostDown]:
        """Every down, paired with the next up of the same host."""
        with self._lock:
            changes = list(self._changes)
        open_: dict[str, int] = {}
        downs: list[HostDown] = []
        for address, up, at_ns in changes:
            if not up and address not in open_:
                open_[address] = at_ns
            elif up and address in open_:
                downs.append(HostDown(address, open_.pop(address), at_ns))
        downs.extend(HostDown(address, at_ns, None) for address, at_ns in open_.items())
        return sorted(downs, key=lambda d: d.down_ns)

    def _note(self, host: Any, up: bool) -> None:
        endpoint = getattr(host, "endpoint", None)
        address = str(getattr(endpoint, "address", None) or getattr(host, "address", host))
        with self._lock:
            self._changes.append((address, up, time.monotonic_ns()))
