"""The default engine: ranges diffed by threads of this process, on the caller's open sessions."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from astrachaos.reconcile.engines.interface import EngineContext, OutcomeSink
from astrachaos.reconcile.rangediff import RangeJob, diff_range, lent_sessions
from astrachaos.reconcile.tokens import TokenRange


@dataclass(frozen=True)
class Threads:
    """`concurrency` ranges at once in this process."""

    concurrency: int = 8

    def run(
        self, job: RangeJob, ranges: Sequence[TokenRange], done: OutcomeSink, context: EngineContext
    ) -> None:
        """Diff every range; outcomes reach `done` on this thread as they complete."""
        with lent_sessions(context.sessions), ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [pool.submit(diff_range, job, r.start, r.end) for r in ranges]
            for future in as_completed(futures):
                done(future.result())
