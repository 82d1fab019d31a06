"""The reconcile checkpoint file: what a resume finds is what it says it holds."""

from __future__ import annotations

from pathlib import Path

from astrachaos.reconcile.checkpoint import Checkpoint
from astrachaos.reconcile.tokens import TokenRange


def test_ranges_in_file_counts_the_ranges_written_and_skips_a_line_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.jsonl"
    checkpoint = Checkpoint(path, {"source": "a"}, resume=False)
    checkpoint.record(TokenRange(0, 10), {"rows": 1})
    checkpoint.record(TokenRange(10, 20), {"rows": 2})
    assert checkpoint.ranges_in_file() == 2
    checkpoint.close()
    with path.open("a", encoding="utf-8") as file:
        file.write('{"kind": "range", "range": [20, ')  # a crash mid-line
    resumed = Checkpoint(path, {"source": "a"}, resume=True)
    assert resumed.ranges_in_file() == 2 == len(resumed.completed)
    resumed.record(TokenRange(20, 30), {"rows": 3})
    assert resumed.ranges_in_file() == 3
    resumed.close()
