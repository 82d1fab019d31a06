"""`python -m bench.pyapi_overhead [WRITES] [REPS]`: what `astrachaos.chaos()` costs a user's writes.

Against the local node, no fault: the same prepared inserts through the plain session and through
`chaos.session` (every write captured), interleaved repetitions; prints each ratio and the
medians (time wrapped / time plain; 1.00 = free), for sequential `execute` and for
`execute_concurrent_with_args` at concurrency 64.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

KEYSPACE = "bench_pyapi"


def _sequential(session: Any, writes: int) -> float:
    insert = session.prepare(f"INSERT INTO {KEYSPACE}.t (p, n, v) VALUES (?, ?, ?)")
    partition = uuid.uuid4().hex
    started = time.perf_counter()
    for n in range(writes):
        session.execute(insert, (partition, n, "x" * 64))
    return time.perf_counter() - started


def _concurrent(session: Any, writes: int) -> float:
    from cassandra.concurrent import execute_concurrent_with_args

    insert = session.prepare(f"INSERT INTO {KEYSPACE}.t (p, n, v) VALUES (?, ?, ?)")
    partition = uuid.uuid4().hex
    started = time.perf_counter()
    rows = [(partition, n, "x" * 64) for n in range(writes)]
    execute_concurrent_with_args(session, insert, rows, concurrency=64)
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    """Measure and print; exit 0."""
    from cassandra.cluster import Cluster

    import astrachaos

    writes = int(argv[0]) if argv else 2000
    reps = int(argv[1]) if len(argv) > 1 else 5
    cluster = Cluster(["127.0.0.1"], protocol_version=5)
    session = cluster.connect()
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE}"
        " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    session.execute(f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.t (p text, n int, v text, PRIMARY KEY (p, n))")
    out = Path(tempfile.mkdtemp(prefix="pyapi-overhead-"))
    cases: dict[str, Callable[[Any, int], float]] = {"sequential": _sequential, "concurrent": _concurrent}
    ratios: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for rep in range(reps):
            for name, case in cases.items():
                plain = case(session, writes)
                with astrachaos.chaos(session, out=out / f"{name}-{rep}") as chaos:
                    wrapped = case(chaos.session, writes)
                ratios[name].append(wrapped / plain)
                print(f"rep {rep} {name:10} plain {writes / plain:7.0f}/s  wrapped {writes / wrapped:7.0f}/s"
                      f"  ratio {wrapped / plain:.2f}", flush=True)  # fmt: skip
    finally:
        cluster.shutdown()
    for name, values in ratios.items():
        median = statistics.median(values)
        print(f"{name}: median time ratio wrapped/plain {median:.2f} ({reps} reps x {writes})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
