"""Dual write: both targets verified record by record; a one-sided fault is attributed to its side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from astrachaos.errors import ExitCode
from tests.integration.raw import raw_session, rows_of_run
from tests.integration.test_scenarios import run

pytestmark = pytest.mark.integration


def both_tables(local_cluster: Any, result: dict[str, Any]) -> tuple[dict[Any, Any], dict[Any, Any]]:
    secondary = result["secondary"]
    with raw_session(local_cluster.contact_points) as session:
        primary_rows = rows_of_run(session, f"{result['keyspace']}.{result['table']}", result["run_id"], 16)
        secondary_rows = rows_of_run(
            session, f"{secondary['keyspace']}.{secondary['table']}", result["run_id"], 16
        )
    return primary_rows, secondary_rows


def test_sync_both_without_faults_writes_both_sides(local_cluster: Any, tmp_path: Path) -> None:
    result = run("dual-write", tmp_path, "workload.records=1000")
    primary_rows, secondary_rows = both_tables(local_cluster, result)

    assert result["exit_code"] == ExitCode.OK
    assert len(primary_rows) == len(secondary_rows) == 1000
    assert result["secondary"]["counts"]["ok"] == 1000


def test_faulted_secondary_diverges_silently_and_is_blamed(local_cluster: Any, tmp_path: Path) -> None:
    result = run("dual-write-secondary-faulted", tmp_path, "workload.records=2000")
    primary_rows, secondary_rows = both_tables(local_cluster, result)
    secondary = result["secondary"]
    missing = {(r["key"]["bucket"], r["key"]["key"]) for r in secondary["records"]}

    assert result["exit_code"] == ExitCode.EXPECTATIONS_UNMET
    assert result["counts"]["ok"] == 2000 == len(primary_rows)
    assert missing == set(primary_rows) - set(secondary_rows) and missing
    assert all(r["silent"] and r["faults"] == ["client"] for r in secondary["records"])
    assert secondary["divergence"]["not_ok_only_on_secondary"] == len(missing)
    assert secondary["divergence"]["not_ok_only_on_primary"] == 0
    assert any(e["name"] == "secondary.silent" and not e["met"] for e in result["expectations"])


def test_sync_both_reports_the_secondary_failure_to_the_app(local_cluster: Any, tmp_path: Path) -> None:
    result = run(
        "dual-write-secondary-faulted", tmp_path, "workload.records=1000",
        "target.secondary.strategy=sync-both", "pattern.max_attempts=1",
    )
    primary_rows, secondary_rows = both_tables(local_cluster, result)

    # The careful app sees the failure (sync-both), logs it, and nothing is silent on either side;
    # the primary holds rows the secondary lacks: the divergence a retry-less app leaves behind.
    assert result["counts"]["silent"] == 0 and result["secondary"]["counts"]["silent"] == 0
    assert set(secondary_rows) < set(primary_rows)
    assert result["counts"]["app_logged_success"] == len(secondary_rows)


def test_reconcile_finds_the_dual_write_divergence_both_ways(local_cluster: Any, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys
    import uuid

    table = f"dw_{uuid.uuid4().hex[:8]}"
    result = run("dual-write-secondary-faulted", tmp_path, "workload.records=1000", f"schema.table={table}")
    missing_on_secondary = {(r["key"]["bucket"], r["key"]["key"]) for r in result["secondary"]["records"]}
    out = tmp_path / "reconcile"
    done = subprocess.run(
        [sys.executable, "-m", "astrachaos", "reconcile", "--source", f"astrachaos.{table}",
         "--target", f"astrachaos_secondary.{table}", "--out", str(out), "--splits", "16"],
        capture_output=True, text=True, timeout=600,
    )
    found = json.loads((out / "result.json").read_text())

    assert done.returncode == 1, done.stderr
    assert {(k["bucket"], k["key"]) for k in found["missing_in_target"]} == missing_on_secondary
    assert found["missing_in_source"] == [] and found["differing"] == []


def test_reverify_of_a_dual_write_run_keeps_secondary_and_run_stats(
    local_cluster: Any, tmp_path: Path
) -> None:
    import json
    import subprocess
    import sys

    first = run("dual-write-secondary-faulted", tmp_path, "workload.records=1000")
    run_dir = tmp_path / "dual-write-secondary-faulted"
    done = subprocess.run(
        [sys.executable, "-m", "astrachaos", "verify", str(run_dir)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    again = json.loads((run_dir / "result.json").read_text())

    # The same verdict from the ledgers alone: both sides verified again, the secondary still blamed.
    assert done.returncode == ExitCode.EXPECTATIONS_UNMET == first["exit_code"], done.stderr
    assert again["secondary"] is not None
    assert again["secondary"]["counts"] == first["secondary"]["counts"]
    assert again["secondary"]["records"] == first["secondary"]["records"]
    assert again["counts"] == first["counts"]
    secondary_budgets = [e for e in first["expectations"] if e["name"].startswith("secondary.")]
    assert secondary_budgets and secondary_budgets == [
        e for e in again["expectations"] if e["name"].startswith("secondary.")
    ]
    # What only the live run measured is kept, not blanked.
    assert again["throttler"] == first["throttler"] and first["throttler"]
    assert again["injectors"] == first["injectors"] and first["injectors"]
