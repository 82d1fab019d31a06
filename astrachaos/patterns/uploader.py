"""`uploader`: the seed's AstraUploader — success logged on submit, whole-batch retry forever.

Faithful to the original: all statements of a batch go out at once; the batch is logged as
uploaded as soon as it is handed to the driver; when the whole-batch future fails, a warning is
logged only if no writer has warned before (a shared flag), and the batch is retried after a
fixed delay, forever; retries still pending when the application shuts down are dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future

from astrachaos.patterns.interface import PatternContext, all_of
from astrachaos.workload.plan import PlannedRecord


class Uploader:
    """The careless uploader that made production lose rows while logging 100% success."""

    def __init__(self, ctx: PatternContext) -> None:
        self._ctx = ctx
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self._stopping = False

    def write(self, batch: Sequence[PlannedRecord], batch_no: int) -> None:
        """Fire every statement of the batch and log it as uploaded straight away."""
        self._upload(batch, batch_no, attempt=1)
        self._ctx.log.success(batch, "Uploaded batch", batch=batch_no, writer=self._ctx.writer)

    def shutdown(self) -> None:
        """Stop: pending retries are cancelled and their records silently dropped."""
        with self._lock:
            self._stopping = True
            timers = list(self._timers)
            self._timers.clear()
        for timer in timers:
            timer.cancel()
        if timers:
            self._ctx.log.note("info", "uploader stopped", pending_retries_dropped=len(timers))

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

        def retry() -> None:
            with self._lock:
                self._timers.discard(timer)
                if self._stopping:
                    return
            self._upload(batch, batch_no, attempt)

        timer = threading.Timer(delay, retry)
        timer.daemon = True
        with self._lock:
            if self._stopping:
                return
            self._timers.add(timer)
        timer.start()
