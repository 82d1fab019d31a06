"""`fire-and-forget`: success logged on submit; errors reach only a debug log nobody reads."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from astrachaos.patterns.interface import PatternContext
from astrachaos.workload.plan import PlannedRecord


class FireAndForget:
    """Submits and moves on; the callback only logs at debug level."""

    def __init__(self, ctx: PatternContext) -> None:
        self._ctx = ctx

    def write(self, batch: Sequence[PlannedRecord], batch_no: int) -> None:
        """Send every statement without awaiting any; log the batch as written."""
        for group in self._ctx.channel.groups(batch):
            self._ctx.channel.submit(
                group, 1, functools.partial(self._answered, group=group, batch_no=batch_no)
            )
        self._ctx.log.success(batch, "records written", batch=batch_no, writer=self._ctx.writer)

    def shutdown(self) -> None:
        """Nothing to drain: the application never tracked its writes."""

    def _answered(
        self, error: BaseException | None, group: Sequence[PlannedRecord], batch_no: int
    ) -> None:
        if error is not None:
            self._ctx.log.note(
                "debug",
                "write callback error",
                batch=batch_no,
                error=type(error).__name__,
                record_ids=[p.record.record_id for p in group],
            )
