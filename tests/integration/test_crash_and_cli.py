"""The CLI end to end: a run killed with SIGKILL is verified afterwards; bad input exits 3."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from astrachaos.events import DriverOutcome
from astrachaos.ledger.writer import Ledger
from tests.integration.raw import raw_session, rows_of_run

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "astrachaos"]


def test_killed_run_is_verified_afterwards(local_cluster: Any, tmp_path: Path) -> None:
    run_dir = tmp_path / "killed"
    child = subprocess.Popen(
        [
            *CLI,
            "run",
            "queue-overflow-fixed",
            "--out",
            str(run_dir),
            "--seed",
            "3",
            "--set",
            "workload.records=400000",
            "--set",
            "workload.rate=4000",
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    acked = 0
    while acked < 3000 and time.monotonic() < deadline:
        time.sleep(0.5)
        if (run_dir / "ledger.sqlite").exists():
            try:
                acked = Ledger.open(run_dir / "ledger.sqlite").counts().acked
            except Exception:
                acked = 0
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert acked >= 3000, "the run should have acknowledged writes before the kill"

    ledger = Ledger.open(run_dir / "ledger.sqlite")
    acked_keys = {
        (r.bucket, r.key) for r in ledger.iter_records() if r.outcome is DriverOutcome.ACKED
    }
    planned = ledger.counts().planned
    ledger.close()
    assert not (run_dir / "result.json").exists()

    verified = subprocess.run([*CLI, "verify", str(run_dir)], capture_output=True, text=True)
    assert verified.returncode in (0, 1), verified.stderr
    assert "Traceback" not in verified.stderr
    result = json.loads((run_dir / "result.json").read_text())
    with raw_session(local_cluster.contact_points) as session:
        rows = rows_of_run(session, f"astrachaos.{result['table']}", result["run_id"], 16)
    assert result["counts"]["records"] == planned
    assert len(acked_keys) >= acked
    assert acked_keys <= set(rows), (
        "every acknowledged write recorded before the kill is in the table"
    )
    assert result["counts"]["lost"] == 0
    assert result["counts"]["ok"] >= len(acked_keys)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workload:\n  writers: 0\n", "line 2, field workload.writers"),
        ("workload:\n  recods: 5\n", "unknown field"),
        ("workload: [unclosed\n", "line"),
    ],
)
def test_malformed_scenario_exits_3_naming_file_and_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    done = subprocess.run([*CLI, "run", str(bad)], capture_output=True, text=True)
    assert done.returncode == 3
    assert "bad.yaml" in done.stderr and expected in done.stderr
    assert "Traceback" not in done.stderr


def test_unreachable_host_exits_4_without_traceback(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ASTRACHAOS_CONTACT_POINTS": "127.0.0.99",
        "ASTRACHAOS_DRIVER__CONNECT_TIMEOUT_S": "2",
    }
    done = subprocess.run(
        [
            *CLI,
            "run",
            "uploader-verification",
            "--set",
            "target.profile=cassandra",
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 4, done.stderr
    assert "127.0.0.99" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "r" / "scenario.yaml").exists(), "the run directory is kept"


def test_run_of_several_scenarios_exits_with_the_most_severe(local_cluster: Any, tmp_path: Path) -> None:
    # The lossy scenario runs first: the clean one after it must not hide its exit 1.
    done = subprocess.run(
        [*CLI, "run", "queue-overflow", "queue-overflow-fixed", "--set", "workload.records=3000",
         "--quiet", "--out", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip

    assert done.returncode == 1, done.stdout + done.stderr
    assert "queue-overflow: exit 1" in done.stdout and "queue-overflow-fixed: exit 0" in done.stdout
    results = {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/result.json")}
    assert {name: r["exit_code"] for name, r in results.items()} == {
        "queue-overflow": 1,
        "queue-overflow-fixed": 0,
    }


def test_misspelled_driver_option_exits_3_before_any_run_directory(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("workload:\n  records: 10\ntarget:\n  driver: {max_queue_szie: 10}\n")
    runs = tmp_path / "runs"
    # A valid scenario first: every scenario is validated before the first one runs.
    done = subprocess.run(
        [*CLI, "run", "uploader-verification", str(bad), "--out", str(runs)],
        capture_output=True, text=True, env={**os.environ, "ASTRACHAOS_RUNS": str(runs)}, timeout=120,
    )  # fmt: skip

    assert done.returncode == 3, done.stdout + done.stderr
    assert f"{bad}, line 4, field target.driver.max_queue_szie" in done.stderr
    assert "did you mean 'max_queue_size'?" in done.stderr and "Traceback" not in done.stderr
    assert not runs.exists(), "no run directory is created for an invalid scenario"
