"""The default engine: ranges diffed by threads of this process, on the caller's open sessions."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import dataclass

from astrachaos.reconcile.engines.interface import EngineContext, OutcomeSink
from astrachaos.reconcile.rangediff import (
    STOPPED,
    RangeJob,
    RangeOutcome,
    allow_scans,
    diff_range,
    lent_sessions,
    stop_scans,
)
from astrachaos.reconcile.tokens import TokenRange

_STOP_GRACE_S = 3.0  # on an interrupt, how long ranges already being read may take to finish


@dataclass(frozen=True)
class Threads:
    """`concurrency` ranges at once in this process."""

    concurrency: int = 8

    def run(
        self, job: RangeJob, ranges: Sequence[TokenRange], done: OutcomeSink, context: EngineContext
    ) -> None:
        """Diff every range; outcomes reach `done` on this thread as they complete."""
        allow_scans()
        pool = ThreadPoolExecutor(max_workers=self.concurrency)
        reported: set[Future[RangeOutcome]] = set()

        def report(future: Future[RangeOutcome]) -> None:
            reported.add(future)
            outcome = future.result()
            if outcome.error != STOPPED:
                done(outcome)

        with lent_sessions(context.sessions):
            futures = [pool.submit(diff_range, job, r.start, r.end) for r in ranges]
            try:
                for future in as_completed(futures):
                    report(future)
            except KeyboardInterrupt:
                # Queued ranges never start; those being read get a moment to finish and are kept.
                for future in futures:
                    future.cancel()
                running = [f for f in futures if not f.cancelled() and f not in reported]
                finished, _ = wait(running, timeout=_STOP_GRACE_S)
                stop_scans()
                for future in finished:
                    if future.exception() is None:
                        report(future)
                raise
            finally:
                stop_scans()
                pool.shutdown(wait=True, cancel_futures=True)
