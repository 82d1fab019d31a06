"""`python -m bench.placement [--records N] [--repetitions R]`: the engine with and without pin_cpu.

Interleaves, each repetition: the engine in 1 process pinned and not, in 2 processes pinned and
not, and the raw driver (never pinned: the driver as an application runs it), on the local node.
Prints each run, then medians of writes/s, their ratio to the raw driver, and client and node CPU
per record (client CPU: the bench process, so only meaningful for 1 process).
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
from pathlib import Path

from astrachaos.driver.session import connect
from astrachaos.driver.table import ensure_table
from astrachaos.run.targets import resolve_profile, target_table
from astrachaos.scenario import Scenario
from bench.plan import FULL, bench_scenario
from bench.writes import raw_write, run_engine

Sample = tuple[float, float, float | None]  # writes/s, client CPU µs/record, node CPU µs/record


def _scenario(records: int, processes: int, pin: bool) -> Scenario:
    scenario = bench_scenario(FULL, records, processes=processes)
    workload = scenario.workload.model_copy(update={"pin_cpu": pin})
    return scenario.model_copy(update={"workload": workload})


def main(argv: list[str] | None = None) -> int:
    """Run the interleaved repetitions; print every run and the medians."""
    parser = argparse.ArgumentParser(prog="python -m bench.placement", description=__doc__)
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--repetitions", type=int, default=4)
    args = parser.parse_args(argv)
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    samples: dict[str, list[Sample]] = {}
    base = bench_scenario(FULL, args.records)
    profile = resolve_profile(base)
    table = target_table(base, profile)
    with tempfile.TemporaryDirectory(prefix="astrachaos-placement-") as workdir, connect(profile) as raw:
        ensure_table(raw.session, table, base.schema_.replication_factor, astra=False)
        warmup = bench_scenario(FULL, FULL.warmup_records)  # unmeasured: the node's JIT and caches
        raw_write(raw.session, table, warmup, f"placement-warmup-{secrets.token_hex(3)}", FULL.concurrency)
        run_engine(_scenario(FULL.warmup_records, 1, True), Path(workdir) / "warmup")
        for rep in range(args.repetitions):
            for processes in (1, 2):
                for pin in (True, False):
                    name = f"engine, {processes} process{'es' if processes > 1 else ''}, pin_cpu={pin}"
                    out = Path(workdir) / f"{rep}-{processes}-{pin}"
                    run = run_engine(_scenario(args.records, processes, pin), out)
                    samples.setdefault(name, []).append(
                        (run.writes_per_s, run.write_cpu_us_per_record, run.node_cpu_us_per_record)
                    )
                    print(f"{name}: {run.writes_per_s:,.0f} writes/s", flush=True)
            run_id = f"placement-raw-{secrets.token_hex(3)}"
            write = raw_write(raw.session, table, base, run_id, FULL.concurrency)
            samples.setdefault("raw driver", []).append(
                (write.writes_per_s, write.cpu_us_per_record, write.node_cpu_us_per_record)
            )
            print(f"raw driver: {write.writes_per_s:,.0f} writes/s", flush=True)
    raw_rate = statistics.median(s[0] for s in samples["raw driver"])
    print(f"medians of {args.repetitions} (load average at end: {os.getloadavg()[0]:.2f}):")
    for name, runs in samples.items():
        rate = statistics.median(s[0] for s in runs)
        client = statistics.median(s[1] for s in runs)
        nodes = [s[2] for s in runs if s[2] is not None]
        node = f"{statistics.median(nodes):.0f}" if nodes else "?"
        print(f"  {name}: {rate:,.0f} writes/s, {rate / raw_rate:.3f} of raw; "
              f"CPU µs/record client {client:.0f}, node {node}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
