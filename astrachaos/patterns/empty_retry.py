"""`empty-retry`: the seed's customer code — a failure is logged once, the batch is dropped."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future

from astrachaos.patterns.interface import PatternContext, all_of
from astrachaos.workload.plan import PlannedRecord


class EmptyRetry:
    """Logs the batch on hand-over; its retry handler has an empty body."""

    def __init__(self, ctx: PatternContext) -> None:
        self._ctx = ctx

    def write(self, batch: Sequence[PlannedRecord], batch_no: int) -> None:
        """Send the batch, log it as saved, leave failures to a handler that does nothing."""
        futures = [self._ctx.channel.send(g) for g in self._ctx.channel.groups(batch)]
        all_of(futures).add_done_callback(lambda f: self._on_failure(f, batch_no))
        self._ctx.log.success(batch, "batch saved", batch=batch_no, writer=self._ctx.writer)

    def shutdown(self) -> None:
        """Nothing pending: failed batches were already dropped."""

    def _on_failure(self, future: Future[None], batch_no: int) -> None:
        error = future.exception()
        if error is not None and self._ctx.shared.first_warning():
            self._ctx.log.note("error", "save failed", batch=batch_no, error=type(error).__name__)
        # retry handler: intentionally empty, as in the code this pattern reproduces
