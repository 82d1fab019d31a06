"""`python -m bench.verify_scan RUN_DIR [--repetitions N]`: verification of a saved run vs a raw scan.

The verification goal measured on one run already written, without its write phase: verification
as a run does it (`verify_run_table`, its own Cluster, connected untimed) and the raw scan at the
same concurrency (`bench.scan.raw_scan_like_engine`, on a warm session) read the same rows, one
after the other, the order swapped each repetition. Prints the medians, their ratio and the
client CPU per row of each side (process CPU, every thread; the connection of verification's
Cluster not counted), and the local node's CPU per row over each (other clients' load included).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from astrachaos.driver.session import connect
from astrachaos.run.saved import open_run
from astrachaos.verify import connection, partitions
from astrachaos.verify.connection import verify_run_table
from astrachaos.verify.reads import READ_AHEAD
from bench.scan import raw_scan_like_engine
from bench.writes import NodeCpu


def main(argv: list[str] | None = None) -> int:
    """Interleave the two reads of the run's rows; print medians and the ratio."""
    parser = argparse.ArgumentParser(prog="python -m bench.verify_scan", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--repetitions", type=int, default=9)
    args = parser.parse_args(argv)
    saved = open_run(args.run_dir)
    side, scenario = saved.primary, saved.scenario
    profile = saved.profile(side)
    table = side.table(profile)
    spec = scenario.verify
    seconds: dict[str, list[float]] = {"verify": [], "scan": []}
    cpu: dict[str, list[float]] = {"verify": [], "scan": []}
    node_cpu: dict[str, list[float]] = {"verify": [], "scan": []}
    node = NodeCpu(scenario)
    timed_verify = partitions.verify

    def verify_timing_cpu(*args: object, **kwargs: object) -> object:
        began, node_began = time.process_time(), node.seconds()
        verification = timed_verify(*args, **kwargs)  # type: ignore[arg-type]
        rows = max(1, verification.rows_read)
        cpu["verify"].append((time.process_time() - began) / rows * 1e6)
        _add_node(node_cpu["verify"], node_began, node.seconds(), rows)
        return verification

    connection.verify = verify_timing_cpu  # type: ignore[attr-defined,assignment]  # as verify_run_table calls it
    with connect(profile) as raw:

        def scan() -> None:
            began, node_began = time.process_time(), node.seconds()
            read = raw_scan_like_engine(
                raw.session, table, saved.run_id, scenario.schema_.buckets, spec.page_size,
                spec.read_consistency, READ_AHEAD,
            )  # fmt: skip
            cpu["scan"].append((time.process_time() - began) / max(1, read.rows) * 1e6)
            _add_node(node_cpu["scan"], node_began, node.seconds(), max(1, read.rows))
            seconds["scan"].append(read.seconds)

        scan()  # warm-up: prepares, fills the node's caches
        seconds["scan"].clear()
        cpu["scan"].clear()
        node_cpu["scan"].clear()
        for rep in range(args.repetitions):
            for which in ("verify", "scan") if rep % 2 == 0 else ("scan", "verify"):
                if which == "scan":
                    scan()
                    continue
                with side.ledger() as ledger:
                    v = verify_run_table(profile, table, saved.run_id, ledger, scenario, side.started_ns)
                seconds["verify"].append(v.seconds)
    median = {k: statistics.median(v) for k, v in seconds.items()}
    line = (
        f"{saved.run_id}: verification {median['verify']:.3f} s, raw scan {median['scan']:.3f} s, "
        f"ratio {median['scan'] / median['verify']:.3f} (medians of {args.repetitions}); client CPU "
        f"per row: verification {statistics.median(cpu['verify']):.2f} us, "
        f"scan {statistics.median(cpu['scan']):.2f} us"
    )
    if node_cpu["verify"] and node_cpu["scan"]:  # the local node's process was found
        line += (
            f"; node CPU per row: verification {statistics.median(node_cpu['verify']):.2f} us, "
            f"scan {statistics.median(node_cpu['scan']):.2f} us"
        )
    print(line)
    return 0


def _add_node(into: list[float], before: float | None, after: float | None, rows: int) -> None:
    """The local node's CPU per row over one read, when the node's process is known."""
    if before is not None and after is not None:
        into.append((after - before) / rows * 1e6)


if __name__ == "__main__":
    sys.exit(main())
