"""Your own writer code under `astrachaos run`: two versions of a team's batch writer.

Point a scenario at one with `pattern.name: "shop_writer:CarefulWriter"` (the module must be
importable: run astrachaos from this directory, or put it on PYTHONPATH). astrachaos calls the
class once per writer thread with a `PatternContext` and hands it batches of records; the
writer uses `ctx.session` exactly like a `cassandra.cluster.Session`, and logs what it believes
with `ctx.log`. The run engine sees every write (ledger, faults, verdict).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from astrachaos.patterns.interface import PatternContext
from astrachaos.workload.plan import PlannedRecord


class CarefulWriter:
    """Waits for every write, retries a failed one a few times, logs success only when acknowledged."""

    attempts = 3

    def __init__(self, ctx: PatternContext) -> None:
        self.ctx = ctx
        self.insert = ctx.session.prepare(ctx.insert_cql)

    def write(self, batch: Sequence[PlannedRecord], batch_no: int) -> None:
        """Write a batch; log stored and failed records separately."""
        stored: list[PlannedRecord] = []
        failed: list[PlannedRecord] = []
        for record in batch:
            (stored if self._write_one(record) else failed).append(record)
        if stored:
            self.ctx.log.success(stored, "stored", batch=batch_no)
        if failed:
            self.ctx.log.failure(failed, "not stored after retries", batch=batch_no)

    def shutdown(self) -> None:
        """Nothing pending: every write was awaited."""

    def _write_one(self, record: PlannedRecord) -> bool:
        for _ in range(self.attempts):
            try:
                self.ctx.session.execute(self.insert, self.ctx.values(record))
                return True
            except Exception:
                continue
        return False


class HastyWriter:
    """Fires every write with execute_async and logs the batch as stored at once (errors: ignored)."""

    def __init__(self, ctx: PatternContext) -> None:
        self.ctx = ctx
        self.insert = ctx.session.prepare(ctx.insert_cql)

    def write(self, batch: Sequence[PlannedRecord], batch_no: int) -> None:
        """Submit and move on."""
        for record in batch:
            future: Any = self.ctx.session.execute_async(self.insert, self.ctx.values(record))
            future.add_errback(lambda error: None)  # "we log errors somewhere, probably"
        self.ctx.log.success(batch, "stored", batch=batch_no)

    def shutdown(self) -> None:
        """Nothing tracked, nothing to drain."""
