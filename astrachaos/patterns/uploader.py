"""`uploader`: the seed's AstraUploader — success logged on submit, whole-batch retry forever.

Faithful to the original: all statements of a batch go out at once; the batch is logged as
uploaded as soon as it is handed to the driver; when the whole-batch future fails, a warning is
logged only if no writer has warned before (a shared flag), and the batch is retried after a
fixed delay, forever; retries still pending when the application shuts down are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future

from astrachaos.patterns.interface import PatternContext, all_of
from astrachaos.patterns.retry_timer import RetryTimer
from astrachaos.workload.plan import PlannedRecord


class Uploader:
    """The careless uploader that made production lose rows while logging 100% success."""

    def __init__(self, ctx: PatternContext) -> None:
        self._ctx = ctx
        self._retries = RetryTimer(f"uploader-retries-{ctx.writer}")

    def write(self, batch: Sequence[PlannedRecord], batch_no: int) -> None:
        """Fire every statement of the batch and log it as uploaded straight away."""
        self._upload(batch, batch_no, attempt=1)
        self._ctx.log.success(batch, "Uploaded batch", batch=batch_no, writer=self._ctx.writer)

    def shutdown(self) -> None:
        """Stop: pending retries are cancelled and their records silently dropped."""
        dropped = self._retries.cancel_all()
        if dropped:
            self._ctx.log.note("info", "uploader stopped", pending_retries_dropped=dropped)

    def _upload(self, batch: Sequence[PlannedRecord], batch_no: int, attempt: int) -> None:
        futures = [self._ctx.channel.send(g, attempt) for g in self._ctx.channel.groups(batch)]
        all_of(futures).add_done_callback(lambda f: self._batch_done(f, batch, batch_no, attempt))

    def _batch_done(
        self, future: Future[None], batch: Sequence[PlannedRecord], batch_no: int, attempt: int
    ) -> None:
        error = future.exception()
        if error is None:
            return
        if self._ctx.shared.first_warning():
            self._ctx.log.note(
                "warn", "upload failed, will retry", batch=batch_no, error=type(error).__name__
            )
        self._schedule_retry(batch, batch_no, attempt + 1)

    def _schedule_retry(self, batch: Sequence[PlannedRecord], batch_no: int, attempt: int) -> None:
        delay = self._ctx.spec.retry_delay_ms / 1000
        self._retries.call_later(delay, lambda: self._upload(batch, batch_no, attempt))
