"""A stopped reconcile stops within seconds, checkpoints the ranges compared, and --resume finishes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cassandra.concurrent import execute_concurrent_with_args

from tests.integration.raw import raw_session

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "astrachaos"]
KS = "robust_reconcile"
ROWS = 20_000


@pytest.fixture(scope="module")
def twin_tables(local_cluster: Any) -> Iterator[tuple[str, str]]:
    """Two equal tables of 20,000 rows each in keyspace robust_reconcile (dropped after)."""
    with raw_session(list(local_cluster.contact_points)) as session:
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        names = []
        for name in ("a", "b"):
            table = f"{KS}.{name}"
            session.execute(f"DROP TABLE IF EXISTS {table}")
            session.execute(f"CREATE TABLE {table} (k int PRIMARY KEY, v text)")
            insert = session.prepare(f"INSERT INTO {table} (k, v) VALUES (?, ?)")
            execute_concurrent_with_args(session, insert, [(i, f"v{i}") for i in range(ROWS)], concurrency=64)
            names.append(table)
        yield names[0], names[1]
        session.execute(f"DROP KEYSPACE IF EXISTS {KS}")


def _checkpointed(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()[1:]
    return [json.loads(line) for line in lines if line.endswith("}")]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_reconcile_checkpoints_what_it_compared_and_resume_finishes(
    twin_tables: tuple[str, str], tmp_path: Path, stop: signal.Signals
) -> None:
    source, target = twin_tables
    out = tmp_path / "out"
    # Small pages and one worker make the comparison take far longer than the test waits.
    args = ["reconcile", "--out", str(out), "--source", source, "--target", target,
            "--splits", "64", "--concurrency", "1", "--page-size", "10"]  # fmt: skip
    child = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = out / "checkpoint.jsonl"
    deadline = time.monotonic() + 120
    while len(_checkpointed(checkpoint)) < 3 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    assert child.poll() is None, "the comparison ended before it could be interrupted"
    signalled = time.monotonic()
    child.send_signal(stop)
    _, err = child.communicate(timeout=60)
    took = time.monotonic() - signalled
    assert child.returncode == 130, err
    assert took < 5, f"stopped {took:.1f}s after the signal"
    assert "Traceback" not in err
    assert "checkpointed" in err and "--resume" in err
    kept = _checkpointed(checkpoint)
    assert 3 <= len(kept) < 64
    assert f"interrupted: {len(kept)} of 64 token ranges compared and checkpointed" in err
    assert all(entry["source_rows"] == entry["target_rows"] for entry in kept)

    resumed = subprocess.run([*CLI, *args, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["counts"]["source_rows"] == result["counts"]["target_rows"] == ROWS
    assert result["counts"]["ranges_resumed"] == len(kept)
