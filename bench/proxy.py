"""Write throughput through the network proxy (no toxic) against direct, in the same run."""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from astrachaos.config.settings import load_profile
from astrachaos.driver.session import connect
from astrachaos.injectors.network import connect_through
from astrachaos.proxy import hub

TABLE = "astrachaos.bench_proxy"


def _write_rate(extra: dict[str, Any], rows: int, concurrency: int) -> float:
    from cassandra.concurrent import execute_concurrent_with_args

    profile = load_profile("local").profile
    with connect(profile, **extra) as connection:
        session = connection.session
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (run text, id bigint, payload text, PRIMARY KEY (run, id))"
        )
        insert = session.prepare(f"INSERT INTO {TABLE} (run, id, payload) VALUES (?, ?, ?)")
        run = uuid.uuid4().hex
        args = [(f"{run}:{i % 64}", i, "x" * 64) for i in range(rows)]
        began = time.perf_counter()
        execute_concurrent_with_args(
            session, insert, args, concurrency=concurrency, raise_on_first_error=True
        )
        return rows / (time.perf_counter() - began)


def measure(rows: int = 50_000, concurrency: int = 64, repetitions: int = 3) -> dict[str, float]:
    """Median rows/s direct and through the proxy, alternating, and their ratio (goal ≥ 0.8)."""
    profile = load_profile("local").profile
    proxies = hub.acquire(profile.contact_points, profile.port)
    try:
        overrides = connect_through(proxies)
        through = {
            "contact_points": overrides.contact_points,
            "port": overrides.port,
            "address_translator": overrides.address_translator,
        }
        direct_rates, proxied_rates = [], []
        for _ in range(repetitions):
            direct_rates.append(_write_rate({}, rows, concurrency))
            proxied_rates.append(_write_rate(through, rows, concurrency))
    finally:
        hub.release(proxies)
    direct, proxied = statistics.median(direct_rates), statistics.median(proxied_rates)
    return {"direct_rows_per_s": direct, "proxied_rows_per_s": proxied, "ratio": proxied / direct}


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000), indent=2))
