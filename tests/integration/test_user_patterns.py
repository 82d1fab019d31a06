"""A team's own writer code under `astrachaos run` (pattern.name: module:factory), checked by raw reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from astrachaos.errors import ExitCode
from tests.integration.raw import raw_session, rows_of_run

pytestmark = pytest.mark.integration

PATTERNS = Path(__file__).parents[2] / "examples" / "patterns"


def run_example(tmp_path: Path, *overrides: str) -> tuple[int, dict[str, Any], Path]:
    """`astrachaos run shop-writer.yaml` from the example's directory, as a user runs it."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "astrachaos", "run", "shop-writer.yaml", "--out", str(out), "--quiet"]
    command += ["--seed", "11", "--set", "schema.table=pyapi_records", "--set", "workload.records=1000"]
    for override in overrides:
        command += ["--set", override]
    env = {**os.environ, "PYTHONPATH": ""}  # the module is found from the working directory
    done = subprocess.run(command, cwd=PATTERNS, env=env, capture_output=True, text=True, timeout=300)
    assert (out / "result.json").is_file(), done.stdout + done.stderr
    return done.returncode, json.loads((out / "result.json").read_text()), out


def app_logged_ids(run_dir: Path) -> set[int]:
    ids: set[int] = set()
    for line in (run_dir / "app.log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["level"] == "info" and "record_ids" in entry:
            ids.update(entry["record_ids"])
    return ids


def test_a_careful_user_writer_passes_and_every_logged_record_is_in_the_table(
    local_cluster: Any, tmp_path: Path
) -> None:
    code, result, out = run_example(tmp_path)
    with raw_session(local_cluster.contact_points) as session:
        rows = rows_of_run(session, f"{result['keyspace']}.{result['table']}", result["run_id"], 16)
    assert code == ExitCode.OK and result["pattern"] == "shop_writer:CarefulWriter"
    assert result["counts"]["silent"] == 0 and result["counts"]["lost"] == 0
    present = {row.record_id for row in rows.values()}
    assert app_logged_ids(out) <= present and result["counts"]["present"] == len(present)
    (client,) = [i for i in result["injectors"] if i["name"] == "client"]
    assert client["injected"] > 0  # the faults reached the user's own session


def test_a_hasty_user_writer_fails_with_its_silent_records_absent(local_cluster: Any, tmp_path: Path) -> None:
    code, result, out = run_example(tmp_path, "pattern.name=shop_writer:HastyWriter")
    with raw_session(local_cluster.contact_points) as session:
        rows = rows_of_run(session, f"{result['keyspace']}.{result['table']}", result["run_id"], 16)
    assert code == ExitCode.EXPECTATIONS_UNMET
    assert app_logged_ids(out) == set(range(1000))  # it logged everything as stored
    silent = [r for r in result["records"] if r["silent"]]
    assert silent and len(silent) == result["counts"]["silent"]
    assert all((r["key"]["bucket"], r["key"]["key"]) not in rows for r in silent)
    assert {r["last_error"] for r in silent} == {"WriteTimeout"}
    assert {row.record_id for row in rows.values()} | {r["record_id"] for r in silent} == set(range(1000))


def test_an_unknown_user_pattern_is_an_invalid_scenario_before_connecting(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "astrachaos", "scenarios", "validate", "shop-writer.yaml"]
    ok = subprocess.run(command, cwd=PATTERNS, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text((PATTERNS / "shop-writer.yaml").read_text().replace("CarefulWriter", "NoSuchWriter"))
    done = subprocess.run([*command[:-1], str(bad)], cwd=PATTERNS, capture_output=True, text=True, timeout=60)
    assert done.returncode == ExitCode.INVALID_SCENARIO
    assert "shop_writer has no 'NoSuchWriter'" in done.stdout + done.stderr
