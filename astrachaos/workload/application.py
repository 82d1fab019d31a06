"""What the writers drive: the simulated application, one per writer (patterns implement it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from astrachaos.workload.plan import PlannedRecord


class AppPattern(Protocol):
    """One writer's application: takes batches, decides what to send, retry and log."""

    def write(self, batch: Sequence[PlannedRecord], batch_no: int) -> None:
        """Hand a batch of records to the application (called on the writer thread)."""

    def shutdown(self) -> None:
        """The application is stopping: drain, or drop what is pending, as the pattern does."""
