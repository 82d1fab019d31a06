"""How reconcile throughput grows with workers: threads, --workers 2 and 3, Spark local[1] and [2].

Same two equal tables for every engine (kept between invocations: loading is the slow part on a
busy machine), interleaved repetitions, medians. Reports rows/s (both tables' rows), the CPU a
million rows cost this side (local engines: this process and its workers) and the Cassandra node.

    python -m bench.reconcile_scale ROWS [--reps 3] [--spark] [--drop]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.reconcile_bench import CONCURRENCY, SPLITS, _cassandra_cpu_s, _client_cpu_s, _load

KEYSPACE = "spark_reconcile_scale"


def run(rows: int, reps: int, spark: bool, drop: bool) -> dict[str, Any]:
    """Measure every engine on the same tables; the keyspace stays unless `drop`."""
    from astrachaos.config.settings import load_profile
    from astrachaos.driver.session import connect
    from astrachaos.reconcile.engines.choice import EngineKind, build_engine

    with connect(load_profile("local").profile) as connection:
        _ensure_tables(connection.session, rows)
    engines: dict[str, Any] = {
        f"workers={w}": build_engine(EngineKind.LOCAL, workers=w, concurrency=CONCURRENCY) for w in (1, 2, 3)
    }
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    client: dict[str, list[float]] = {name: [] for name in engines}
    server: dict[str, list[float]] = {name: [] for name in engines}
    spark_names = ("spark local[1]", "spark local[2]") if spark else ()
    for name in spark_names:
        seconds[name], server[name] = [], []
    for _ in range(reps):
        for name, engine in engines.items():
            s, c, v = _once(rows, engine)
            seconds[name].append(s)
            client[name].append(c)
            server[name].append(v)
        for name in spark_names:  # one JVM per master: a SparkContext's master is fixed
            s, _, v = _spark_once(rows, name.split()[1])
            seconds[name].append(s)
            server[name].append(v)
    per_million = 1_000_000 / (2 * rows)
    result: dict[str, Any] = {"rows_per_table": rows, "repetitions": reps, "splits": SPLITS,
                              "concurrency_per_worker": CONCURRENCY}  # fmt: skip
    for name in seconds:
        median = statistics.median(seconds[name])
        result[name] = {
            "rows_per_s": round(2 * rows / median),
            "seconds": [round(x, 2) for x in seconds[name]],
            "cassandra_cpu_s_per_million_rows": round(statistics.median(server[name]) * per_million, 2),
        }
        if name in client:
            result[name]["client_cpu_s_per_million_rows"] = round(
                statistics.median(client[name]) * per_million, 2
            )
    base = result["workers=1"]["rows_per_s"]
    for name in seconds:
        result[name]["vs_workers_1"] = round(result[name]["rows_per_s"] / base, 3)
    if drop:
        with connect(load_profile("local").profile) as connection:
            connection.session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}")
    return result


def _ensure_tables(session: Any, rows: int) -> None:
    meta = session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (KEYSPACE,)
    ).all()
    if {r.table_name for r in meta} >= {"a", "b", "loaded"}:
        done = session.execute(f"SELECT rows FROM {KEYSPACE}.loaded WHERE id = 0").one()
        if done is not None and done.rows == rows:
            return
    _load(session, rows, KEYSPACE)
    session.execute(f"CREATE TABLE {KEYSPACE}.loaded (id int PRIMARY KEY, rows int)")
    session.execute(f"INSERT INTO {KEYSPACE}.loaded (id, rows) VALUES (0, %s)", (rows,))


def _once(rows: int, engine: Any) -> tuple[float, float, float]:
    from astrachaos.reconcile.sides import open_sides
    from astrachaos.reconcile.tables import TableOptions, compare_tables

    with (
        open_sides([f"{KEYSPACE}.a", f"{KEYSPACE}.b"], "local") as (a, b),
        tempfile.TemporaryDirectory() as out,
    ):
        client, server = _client_cpu_s(), _cassandra_cpu_s()
        began = time.perf_counter()
        result = compare_tables(a, b, TableOptions(splits=SPLITS, concurrency=CONCURRENCY), Path(out),
                                engine=engine)  # fmt: skip
        seconds = time.perf_counter() - began
        used = (_client_cpu_s() - client, _cassandra_cpu_s() - server)
    assert result.differences == 0 and result.counts["source_rows"] == rows, result.counts
    return seconds, *used


def _spark_once(rows: int, master: str) -> tuple[float, float, float]:
    """One run on a fresh SparkContext; the first range wave's worker start-up is included."""
    from astrachaos.reconcile.engines.spark import SparkTasks, spark_context

    with spark_context(master, {"spark.ui.enabled": "false"}):
        return _once(rows, SparkTasks())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", type=int)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--spark", action="store_true")
    parser.add_argument("--drop", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.rows, args.reps, args.spark, args.drop), indent=2))
