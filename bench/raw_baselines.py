"""`python -m bench.raw_baselines [--repetitions N] [--records N]`: the engine against two raw clients.

The write goal's baseline is `execute_concurrent_with_args` as the driver's documentation shows
it: it returns a list of every result, so every answered future (and what it holds) stays alive
until the last write, and Python's cyclic collector walks more of them at each full pass. The
same call with `results_generator=True` keeps none. This interleaves the engine (`careful`,
ledger on, one process) with both, in rotating order, and prints for each the median writes/s,
client CPU per record and seconds spent in the collector over the writes.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from astrachaos.driver.session import connect
from astrachaos.driver.table import RunTable, drop_table, ensure_table
from astrachaos.run.runner import resolve_profile, target_table
from astrachaos.scenario import Scenario
from bench.plan import BenchPlan, bench_scenario
from bench.writes import raw_write, run_engine

SIDES = ("raw, results list", "raw, results generator", "engine")


def _raw(
    session: Any, table: RunTable, scenario: Scenario, concurrency: int, generator: bool
) -> tuple[float, ...]:
    run = raw_write(session, table, scenario, f"bench-raw-{secrets.token_hex(3)}", concurrency, generator)
    return run.writes_per_s, run.cpu_us_per_record, run.gc_s


def main(argv: list[str] | None = None) -> int:
    """Interleave the three writers; print each one's medians."""
    parser = argparse.ArgumentParser(prog="python -m bench.raw_baselines", description=__doc__)
    parser.add_argument("--repetitions", type=int, default=4)
    parser.add_argument("--records", type=int, default=BenchPlan.records)
    args = parser.parse_args(argv)
    plan = replace(BenchPlan(), records=args.records)
    scenario = bench_scenario(plan, plan.records)
    profile = resolve_profile(scenario)
    table = target_table(scenario, profile)
    measured: dict[str, list[tuple[float, ...]]] = {side: [] for side in SIDES}
    with connect(profile) as raw, tempfile.TemporaryDirectory() as workdir:
        ensure_table(raw.session, table, scenario.schema_.replication_factor, astra=False)
        try:
            _raw(raw.session, table, bench_scenario(plan, plan.warmup_records), plan.concurrency, False)
            for rep in range(args.repetitions):
                for side in SIDES[rep % 3 :] + SIDES[: rep % 3]:
                    if side == "engine":
                        run = run_engine(scenario, Path(workdir) / f"engine-{rep}")
                        figures = (run.writes_per_s, run.write_cpu_us_per_record, run.gc_s)
                    else:
                        figures = _raw(raw.session, table, scenario, plan.concurrency, "generator" in side)
                    measured[side].append(figures)
                    print(f"repetition {rep + 1}: {side}: {figures[0]:,.0f} writes/s", flush=True)
        finally:
            drop_table(raw.session, table)
    for side, runs in measured.items():
        rate, cpu, collecting = (statistics.median(r[i] for r in runs) for i in range(3))
        print(
            f"{side}: {rate:,.0f} writes/s, client CPU {cpu:,.0f} us/record, "
            f"collector {collecting:.2f} s (medians)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
