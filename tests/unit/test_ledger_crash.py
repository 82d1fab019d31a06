"""A ledger whose process is killed keeps every record it reported as committed, intact."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astrachaos.errors import EnvironmentProblem
from astrachaos.events import DriverOutcome
from astrachaos.ledger.writer import Ledger

CHILD = Path(__file__).with_name("ledger_crash_child.py")


def _run_and_kill(path: Path, lines_before_kill: int, extra_delay_s: float) -> int:
    """Start the child, read some committed ids, SIGKILL it; return the last id it printed."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(path), "3000"],
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert child.stdout is not None
    try:
        printed = [int(child.stdout.readline()) for _ in range(lines_before_kill)]
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:  # the child is up and writing
            time.sleep(0.005)
        time.sleep(extra_delay_s)  # lands anywhere: publishing, a timed commit, a flush's commit
    finally:
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    printed += [int(line) for line in rest.split()]  # lines already in the pipe count too
    return printed[-1] if printed else -1


# (lines to read before the kill, longest extra wait): the first round does not wait for a line
# at all, only for the file, so the kill may land mid-way through creating it or through a commit.
ROUNDS = [(0, 0.5), (1, 0.0), (1, 0.3), (2, 0.3), (3, 0.3)]


@pytest.mark.parametrize(("lines", "longest_wait_s"), ROUNDS)
def test_committed_records_survive_a_kill(tmp_path: Path, lines: int, longest_wait_s: float) -> None:
    path = tmp_path / "ledger.sqlite"
    wait_s = random.uniform(0.0, longest_wait_s)
    last = _run_and_kill(path, lines, wait_s)
    moment = f"killed {wait_s:.3f}s after line {lines}, last committed id printed: {last}"
    if not path.exists():
        assert last == -1  # killed before it created the file: nothing was promised
        return
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)], moment
    try:
        ledger = Ledger.open(path)
    except EnvironmentProblem:
        assert last == -1, moment  # killed while creating the schema: nothing was promised either
        return
    try:
        committed = {r.record_id: r for r in ledger.iter_records() if r.record_id <= last}
        assert sorted(committed) == list(range(last + 1)), moment
        assert all(r.outcome is DriverOutcome.ACKED and r.app_logged for r in committed.values()), moment
        assert ledger.meta()["scenario"] == "kill"
    finally:
        ledger.close()
