"""`astrachaos suite`: one aggregated verdict from real runs, JUnit for CI."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

SUITE = """
name: mini
runs:
  - {name: clean, scenario: uploader-verification, set: {pattern.name: careful}}
  - {name: loss-reproduced, scenario: queue-overflow, set: {workload.records: 3000}, expect_exit: 1}
"""


def run_suite(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    suite = tmp_path / "suite.yaml"
    suite.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "astrachaos", "suite", str(suite), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_suite_passes_when_each_entry_gives_its_exit_code(local_cluster: Any, tmp_path: Path) -> None:
    done = run_suite(tmp_path, SUITE)
    assert done.returncode == 0, done.stdout + done.stderr
    junit = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    suites = {s.get("name"): s for s in junit.iter("testsuite")}
    assert set(suites) == {"clean", "loss-reproduced"}
    assert suites["clean"].get("failures") == "0"
    assert int(suites["loss-reproduced"].get("failures") or 0) >= 1


def test_suite_fails_when_an_entry_loses_data_it_must_not(local_cluster: Any, tmp_path: Path) -> None:
    done = run_suite(tmp_path, SUITE.replace(", expect_exit: 1", ""))
    assert done.returncode == 1
    assert "FAIL" in done.stdout and "1/2 passed" in done.stdout


def test_invalid_suite_exits_3(tmp_path: Path) -> None:
    done = run_suite(tmp_path, "runs:\n  - {name: x, scenario: nope-does-not-exist}\n")
    assert done.returncode == 3 and "Traceback" not in done.stderr
