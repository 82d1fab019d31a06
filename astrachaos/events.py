"""Events between the workload and whatever observes it (ledger, statistics, progress).

The workload and its observers never import each other: application patterns publish these
plain records on an `EventBus` and the observers subscribe. An observer that raises is logged
and the run goes on.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, TypeVar

log = logging.getLogger(__name__)


class DriverOutcome(StrEnum):
    """What the driver told the application about one write."""

    ACKED = "acked"
    FAILED = "failed"
    INDETERMINATE = "indeterminate"  # timed out: may or may not have been applied
    DROPPED = "dropped"  # never sent: throttled, queue overflow, or the app gave up before sending


RECORD_DIGEST = "xxh3-64"  # how Record.digest is made; ledgers name it in their meta


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """When one injector's fault was active, in monotonic ns; `end_ns` None: still (or cut off).

    The one shape of a fault window: the schedule opens and closes it, the ledger stores it
    (`window_id`: its row, 0 before), verification matches records against it, reports draw it.
    """

    injector: str
    kind: str
    start_ns: int
    end_ns: int | None = None
    window_id: int = 0

    @property
    def label(self) -> str:
        """How reports name it: `injector (kind)`."""
        return f"{self.injector} ({self.kind})"

    def overlaps(self, start_ns: int, end_ns: int) -> bool:
        """Whether the fault was active at some moment in [start_ns, end_ns]."""
        return self.start_ns <= end_ns and (self.end_ns is None or self.end_ns >= start_ns)

    def ended(self, end_ns: int) -> FaultWindow:
        """This window, closed at `end_ns`."""
        return replace(self, end_ns=end_ns)


@dataclass(frozen=True, slots=True)
class Record:
    """One intended write: its identity in the run and its primary key in the table."""

    record_id: int
    writer: int
    batch: int
    bucket: int
    key: int
    digest: str


@dataclass(frozen=True, slots=True)
class RecordsPlanned:
    """The workload intends to write these records (published before anything is sent)."""

    records: tuple[Record, ...]
    at_ns: int


@dataclass(frozen=True, slots=True)
class PartitionPrint:
    """What one writer planned in one bucket, hashed (`workload.prints`)."""

    bucket: int
    records: int
    columns: str  # keys, record ids and payloads, each column hashed on its own
    wire_bytes: int = 0  # the length of the rows' cells as the node sends them, if kept
    wire: str | None = None  # their hash; None when the run's rows are not known byte for byte


@dataclass(frozen=True, slots=True)
class PartitionsPrinted:
    """A writer is done planning: the prints of its share of each bucket."""

    writer: int
    prints: tuple[PartitionPrint, ...]


@dataclass(frozen=True, slots=True)
class WriteCompleted:
    """The driver's final word on these records (one statement: a single insert or a batch)."""

    record_ids: tuple[int, ...]
    outcome: DriverOutcome
    attempts: int
    submitted_ns: int
    completed_ns: int
    error_class: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class AppLogged:
    """What the application wrote in its own log about these records."""

    record_ids: tuple[int, ...]
    success: bool
    at_ns: int


@dataclass(frozen=True, slots=True)
class PhaseStarted:
    """The run entered a phase: connecting, writing, draining, rolling back faults, verifying."""

    phase: str


@dataclass(frozen=True, slots=True)
class FaultsActive:
    """The faults applied right now changed; `names` are those still applied."""

    names: tuple[str, ...]


E = TypeVar("E")


class EventBus:
    """Synchronous publish/subscribe by event type; handlers run on the publishing thread."""

    def __init__(self) -> None:
        self._handlers: dict[type[Any], list[Callable[[Any], None]]] = defaultdict(list)
        self._lock = threading.Lock()

    def subscribe(self, event_type: type[E], handler: Callable[[E], None]) -> None:
        """Call `handler` for every published event of exactly `event_type`."""
        with self._lock:
            self._handlers[event_type].append(handler)

    def publish(self, event: object) -> None:
        """Deliver `event` to its subscribers; a failing subscriber is logged, never raised."""
        for handler in self._handlers.get(type(event), ()):
            try:
                handler(event)
            except Exception:  # an observer must never break the run
                log.exception("event handler %r failed on %s", handler, type(event).__name__)
