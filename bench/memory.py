"""Peak resident memory of a whole `astrachaos run`, measured on a child process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from astrachaos.config.loader import dump_scenario
from astrachaos.scenario import Scenario


@dataclass(frozen=True)
class PeakRss:
    """The child's high-water mark of resident memory, and how its run went."""

    records: int
    max_rss_kib: int
    seconds: float
    exit_code: int
    log: Path
    counts: dict[str, int]  # the run's result.json counts (what went wrong, if it failed)

    @property
    def mb(self) -> float:
        """Peak RSS in MB (10^6 bytes; getrusage reports KiB on Linux)."""
        return self.max_rss_kib * 1024 / 1e6


def peak_rss(scenario: Scenario, workdir: Path) -> PeakRss:
    """Run `python -m astrachaos run` on the scenario through `bench.isolated`; its own peak."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec = workdir / f"{scenario.name}.yaml"
    spec.write_text(dump_scenario(scenario))
    log = workdir / "child.log"
    report = workdir / "rusage.json"
    run = [sys.executable, "-m", "astrachaos", "run", str(spec), "--out", str(workdir / "run"),
           "--quiet"]  # fmt: skip
    began = time.monotonic()
    with log.open("wb") as sink:
        subprocess.run(
            [sys.executable, "-m", "bench.isolated", str(report), *run],
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
            check=False,
        )
    measured = json.loads(report.read_text())
    result = workdir / "run" / "result.json"
    counts = json.loads(result.read_text()).get("counts", {}) if result.is_file() else {}
    return PeakRss(
        records=scenario.workload.records,
        max_rss_kib=int(measured["max_rss_kib"]),
        seconds=time.monotonic() - began,
        exit_code=int(measured["exit_code"]),
        log=log,
        counts=counts,
    )
