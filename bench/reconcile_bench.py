"""Reconcile throughput against a raw parallel token-range scan of both tables, and peak memory."""

from __future__ import annotations

import contextlib
import os
import resource
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

KEYSPACE = "reconcile_bench"
SPLITS = 64
CONCURRENCY = 8


def run(rows: int = 1_000_000) -> dict[str, Any]:
    """Two equal tables of `rows` rows; reconcile rows/s vs raw scan rows/s (same splits,
    concurrency, page size, columns, row factory; raw timed before and after, averaged) and the
    peak RSS while reconciling (VmHWM reset after loading); the keyspace is dropped at the end."""
    from astrachaos.config.settings import load_profile
    from astrachaos.driver.session import connect
    from astrachaos.reconcile.sides import open_sides
    from astrachaos.reconcile.tables import TableOptions, compare_tables

    with connect(load_profile("local").profile) as connection:
        session = connection.session
        load_seconds = _load(session, rows)
        rss_before = _peak_rss_mb()
        raw_rows, first_raw_s = _raw_scan(session)  # also warms the node's caches for both
        _reset_peak_rss()
        with (
            open_sides([f"{KEYSPACE}.a", f"{KEYSPACE}.b"], "local") as (a, b),
            tempfile.TemporaryDirectory() as out,
        ):
            began = time.perf_counter()
            result = compare_tables(a, b, TableOptions(splits=SPLITS, concurrency=CONCURRENCY), Path(out))
            seconds = time.perf_counter() - began
        reconcile_peak = _peak_rss_mb()
        workers = _workers(rows)
        _, second_raw_s = _raw_scan(session)
        raw_seconds = (first_raw_s + second_raw_s) / 2  # before and after: no warm-cache bias
        session.execute(f"DROP KEYSPACE {KEYSPACE}")
    read = result.counts["source_rows"] + result.counts["target_rows"]
    return {
        "rows_per_table": rows,
        "load_s": round(load_seconds, 1),
        "raw_scan_rows_per_s": round(raw_rows / raw_seconds),
        "reconcile_rows_per_s": round(read / seconds),
        "ratio": round((read / seconds) / (raw_rows / raw_seconds), 3),
        "reconcile_s": round(seconds, 2),
        "raw_scan_s": [round(first_raw_s, 2), round(second_raw_s, 2)],
        "differences": result.differences,
        "peak_rss_mb_after_load": rss_before,
        "peak_rss_mb_during_reconcile": reconcile_peak,
        **workers,
    }


def _workers(rows: int, repetitions: int = 3) -> dict[str, Any]:
    """`--workers 2` vs `--workers 1` (threads in one process) on the same tables, interleaved;
    the ratio of medians of rows/s (above 1: two processes are faster). Cassandra shares the cores."""
    import statistics

    from astrachaos.reconcile.engines.choice import EngineKind, build_engine
    from astrachaos.reconcile.sides import open_sides
    from astrachaos.reconcile.tables import TableOptions, compare_tables

    seconds: dict[int, list[float]] = {1: [], 2: []}
    client_cpu: dict[int, list[float]] = {1: [], 2: []}
    server_cpu: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(repetitions):
        for workers in (1, 2):
            engine = build_engine(EngineKind.LOCAL, workers=workers, concurrency=CONCURRENCY)
            with (
                open_sides([f"{KEYSPACE}.a", f"{KEYSPACE}.b"], "local") as (a, b),
                tempfile.TemporaryDirectory() as out,
            ):
                client, server = _client_cpu_s(), _cassandra_cpu_s()
                began = time.perf_counter()
                result = compare_tables(a, b, TableOptions(splits=SPLITS, concurrency=CONCURRENCY),
                                        Path(out), engine=engine)  # fmt: skip
                seconds[workers].append(time.perf_counter() - began)
                client_cpu[workers].append(_client_cpu_s() - client)
                server_cpu[workers].append(_cassandra_cpu_s() - server)
            assert result.differences == 0 and result.counts["source_rows"] == rows, result.counts
    one, two = (statistics.median(seconds[w]) for w in (1, 2))
    per_million = 1_000_000 / (2 * rows)
    return {
        "workers_1_rows_per_s": round(2 * rows / one),
        "workers_2_rows_per_s": round(2 * rows / two),
        "workers_2_vs_1_ratio": round(one / two, 3),
        "workers_seconds": {str(w): [round(s, 2) for s in seconds[w]] for w in (1, 2)},
        # CPU seconds per million rows read (both tables): what a row costs the reconciling side
        # (all its processes) and the Cassandra node; they share this machine's cores.
        "client_cpu_s_per_million_rows": {
            str(w): round(statistics.median(client_cpu[w]) * per_million, 2) for w in (1, 2)
        },
        "cassandra_cpu_s_per_million_rows": {
            str(w): round(statistics.median(server_cpu[w]) * per_million, 2) for w in (1, 2)
        },
        "cores": os.cpu_count(),
    }


def _client_cpu_s() -> float:
    """CPU seconds of this process and its finished children (the --workers processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cassandra_cpu_s() -> float:
    """CPU seconds of the default cluster's Cassandra JVM (the `local` profile's node), from /proc;
    0 when none is found. Other clusters on the machine (local3) are not counted."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if b"CassandraDaemon" not in cmdline or b"/clusters/default/" not in cmdline:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _load(session: Any, rows: int, keyspace: str = KEYSPACE) -> float:
    from cassandra.concurrent import execute_concurrent_with_args

    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
    session.execute(f"CREATE KEYSPACE {keyspace} WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")  # fmt: skip
    began = time.perf_counter()
    for table in ("a", "b"):
        session.execute(f"CREATE TABLE {keyspace}.{table} (p int, c int, name text, amount decimal,"
                        " tags set<text>, PRIMARY KEY (p, c))")  # fmt: skip
        insert = session.prepare(
            f"INSERT INTO {keyspace}.{table} (p, c, name, amount, tags) VALUES (?, ?, ?, ?, ?)"
        )
        from decimal import Decimal

        for start in range(0, rows, 50_000):  # chunks keep the argument list small
            args = [(i // 10, i % 10, f"name {i} ü", Decimal(i) / 100, {f"t{i % 3}"})
                    for i in range(start, min(rows, start + 50_000))]  # fmt: skip
            while args:  # a busy node times some writes out: write those again
                done = execute_concurrent_with_args(session, insert, args, concurrency=64,
                                                    raise_on_first_error=False)  # fmt: skip
                args = [arg for arg, r in zip(args, done, strict=True) if not r.success]
    return time.perf_counter() - began


def _raw_scan(session: Any) -> tuple[int, float]:
    """Every range of both tables, read and iterated, as the engine's scan reads them."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT
    from cassandra.query import tuple_factory

    from astrachaos.reconcile.tokens import split_ring

    profile = session.execution_profile_clone_update(EXEC_PROFILE_DEFAULT, row_factory=tuple_factory)
    cols = "token(p), p, c, amount, name, tags"
    statements = {
        (t, first): session.prepare(
            f"SELECT {cols} FROM {KEYSPACE}.{t} WHERE token(p) {'>=' if first else '>'} ? AND token(p) <= ?"
        )
        for t in ("a", "b")
        for first in (True, False)
    }

    def scan(token_range: Any) -> int:
        for attempt in (1, 2, 3):  # the engine retries a range 3 times: so does the baseline
            try:
                return scan_once(token_range)
            except Exception:
                if attempt == 3:
                    raise
                time.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    def scan_once(token_range: Any) -> int:
        count = 0
        for t in ("a", "b"):
            bound = statements[(t, token_range.includes_start)].bind((token_range.start, token_range.end))
            bound.fetch_size = 5000
            for _ in session.execute(bound, execution_profile=profile):
                count += 1
        return count

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        total = sum(pool.map(scan, split_ring(SPLITS)))
    return total, time.perf_counter() - began


def _reset_peak_rss() -> None:
    """Reset VmHWM (Linux: 5 > /proc/self/clear_refs) so the reconcile's own peak is measured."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    """VmHWM of this process (resettable), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000), indent=2))
