"""Damaged evidence gets a clean message and exit code from every reader, and is never changed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from astrachaos.config.catalog import resolve
from astrachaos.config.loader import dump_scenario, load_scenario
from astrachaos.ledger.writer import Ledger

CLI = [sys.executable, "-m", "astrachaos"]


def _good_scenario() -> str:
    return dump_scenario(load_scenario(resolve("uploader-verification")))


def _good_ledger(path: Path) -> None:
    Ledger.create(path, "run-1", {"keyspace": "astrachaos", "table": "records"}).close()


def _truncated_ledger(path: Path) -> None:
    _good_ledger(path)
    path.write_bytes(path.read_bytes()[:5000])


DAMAGE: dict[str, tuple[Callable[[Path], None], Callable[[Path], None], str]] = {
    "scenario not YAML": (lambda p: p.write_text("name: [unclosed"), _good_ledger, "scenario.yaml"),
    "scenario with an unknown field": (lambda p: p.write_text("x: 1\n"), _good_ledger, "scenario.yaml"),
    "ledger of zero bytes": (
        lambda p: p.write_text(_good_scenario()),
        lambda p: p.touch(),
        "not an astrachaos",
    ),
    "ledger cut short": (lambda p: p.write_text(_good_scenario()), _truncated_ledger, "ledger"),
    "ledger of random bytes": (
        lambda p: p.write_text(_good_scenario()),
        lambda p: p.write_bytes(bytes(range(256)) * 20),
        "not a database",
    ),
    "no ledger": (lambda p: p.write_text(_good_scenario()), lambda p: None, "not a run directory"),
}


CASES = [("verify", damage) for damage in sorted(DAMAGE)] + [
    ("reconcile", "scenario not YAML"),
    ("reconcile", "ledger of random bytes"),
]


@pytest.mark.parametrize(("command", "damage"), CASES)
def test_a_damaged_run_directory_is_a_clean_error_and_stays_as_it_was(
    tmp_path: Path, damage: str, command: str
) -> None:
    write_scenario, write_ledger, message = DAMAGE[damage]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_scenario(run_dir / "scenario.yaml")
    write_ledger(run_dir / "ledger.sqlite")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    args = (
        ["verify", str(run_dir)]
        if command == "verify"
        else ["reconcile", "--run", str(run_dir), "--out", str(tmp_path / "out")]
    )
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode in (3, 4), done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert message in done.stderr
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before
