"""-v and -vv on a real run: astrachaos's debug log, then the driver's, on stderr only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def run(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "astrachaos", *flags, "run", "uploader-verification",
         "--out", str(tmp_path / "-".join(flags or ("plain",))), "--quiet"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_v_logs_the_run_and_vv_adds_the_driver(local_cluster: Any, tmp_path: Path) -> None:
    plain, one, two = run(tmp_path), run(tmp_path, "-v"), run(tmp_path, "-vv")
    assert (plain.returncode, one.returncode, two.returncode) == (0, 0, 0)
    assert "DEBUG" not in plain.stderr
    assert "DEBUG astrachaos.run.runner" in one.stderr and "DEBUG cassandra" not in one.stderr
    assert "DEBUG astrachaos.run.runner" in two.stderr and "DEBUG cassandra" in two.stderr
    for done in (one, two):
        assert "DEBUG" not in done.stdout  # logs never mix with the verdict
