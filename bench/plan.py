"""What one bench run measures: record counts, repetitions, concurrency, and the scenario."""

from __future__ import annotations

from dataclasses import dataclass, replace

from astrachaos.scenario import Scenario

BENCH_TABLE = "bench_records"


@dataclass(frozen=True)
class BenchPlan:
    """The sizes of one bench run; the engine and its baselines share every one of them."""

    records: int = 60_000  # per repetition, for writes and verification
    repetitions: int = 5
    warmup_records: int = 10_000  # one unmeasured round of each side first (JIT, caches)
    writers: int = 2
    max_in_flight: int = 64  # per writer: the raw driver gets writers x max_in_flight
    payload_bytes: int = 64
    batch_size: int = 100
    buckets: int = 16
    rss_records: int = 1_000_000
    seed: int = 1

    @property
    def concurrency(self) -> int:
        """Statements in flight at once, the same for the engine and the raw driver."""
        return self.writers * self.max_in_flight


FULL = BenchPlan()
QUICK = replace(FULL, records=15_000, repetitions=3, warmup_records=3_000, rss_records=100_000)


def bench_scenario(
    plan: BenchPlan, records: int, name: str = "bench-careful", processes: int = 1
) -> Scenario:
    """The `careful` scenario under test: ledger on, a throttler that never throttles.

    With `processes`, the same writers are spread over that many writer processes.
    """
    return Scenario.model_validate(
        {
            "name": name,
            "seed": plan.seed,
            "target": {"profile": "local", "driver": {"throttler": "none"}},
            "schema": {"table": BENCH_TABLE, "buckets": plan.buckets},
            "workload": {
                "writers": plan.writers,
                "processes": processes,
                "records": records,
                "batch_size": plan.batch_size,
                "payload_bytes": plan.payload_bytes,
            },
            "pattern": {"name": "careful", "max_in_flight": plan.max_in_flight},
        }
    )
