"""Every shipped scenario, run through the CLI as a new user would, gives the README's verdict.

The verdict column of the README's two scenario tables is the contract: its exit code, the
classes it names in backticks (`overwritten`, `recovered`, ...) are found, "silent" in an exit-1
verdict means silent records, and an exit 0 means nothing lost and nothing silent. Record counts
are cut where the verdict does not depend on them (CI time); time-windowed faults keep their
full length.

The `local3` scenarios start from a state without that cluster (`local3_absent` wipes it once):
the first of them must be the one that starts it, through the run's autostart.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from astrachaos.config.catalog import entries
from astrachaos.config.loader import load_scenario
from astrachaos.config.settings import load_profile
from astrachaos.local import LocalCluster
from astrachaos.run.autostart import describe, spec_for_profile
from astrachaos.verify.classify import RecordClass

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
SHIPPED = entries()
# Smaller loads that keep each verdict (the shipped sizes are for people watching a demo).
SMALLER: dict[str, tuple[str, ...]] = {
    "applied-then-error": ("workload.records=1000",),
    "basic-chaos": ("workload.records=1000",),
    "dual-write": ("workload.records=1000",),
    "dual-write-secondary-faulted": ("workload.records=1000",),
    "flaky-network": ("workload.records=4000",),
    "insert-simulator": ("workload.records=2000",),
    "key-collision": ("workload.records=2000",),
    "latency": ("workload.records=6000",),
    "multi-session": ("workload.records=2000",),
    "partial-silent-loss": ("workload.records=4000",),
    "queue-full": ("workload.records=2000",),
    "queue-overflow": ("workload.records=3000",),
    "queue-overflow-fixed": ("workload.records=3000",),
    "session-reset": ("workload.records=6000", "pattern.session_reset.after_records=2000"),
    "specific-error": ("workload.records=1000",),
    "wire-overload": ("workload.records=1000",),
}
# As in a CI log: no terminal and no $COLUMNS.
_PIPED = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
# Named in a verdict only as what *may* be seen: a replica that missed nothing leaves no stale row.
_CONDITIONAL = {"stale"}


def readme_verdicts() -> dict[str, str]:
    """Scenario name → verdict cell, from every `| `name` | shows | verdict |` row."""
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| [^\n]*? \| (exit \d+[^\n]*?) \|$", README.read_text(), re.M)
    return dict(rows)


VERDICTS = readme_verdicts()


@pytest.fixture(scope="module")
def local3_absent(local3_session: None) -> None:
    """Once per module, before the first `local3` scenario: no `local3` cluster, as on a new
    machine (an earlier test of the session may have started it; this session owns it)."""
    if LocalCluster.saved_spec("local3") is not None:
        LocalCluster.load("local3").down(wipe=True)


def test_the_readme_gives_a_verdict_for_every_shipped_scenario() -> None:
    assert sorted(VERDICTS) == sorted(SHIPPED)


def _profile(name: str) -> str:
    return load_scenario(SHIPPED[name]).target.profile


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.three_nodes) if _profile(n) == "local3" else n for n in SHIPPED],
)
def test_a_shipped_scenario_gives_the_readme_verdict(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    profile = _profile(name)
    request.getfixturevalue("local3_absent" if profile == "local3" else "local_cluster")
    spec = spec_for_profile(load_profile(profile).profile)
    was_up = LocalCluster(spec).is_up()

    sets = [arg for override in SMALLER.get(name, ()) for arg in ("--set", override)]
    done = subprocess.run(
        [sys.executable, "-m", "astrachaos", "run", name, "--out", str(tmp_path / name),
         "--seed", "7", "--quiet", *sets],
        capture_output=True, text=True, timeout=900, env=_PIPED,
    )  # fmt: skip
    verdict = VERDICTS[name]
    expected_exit = int(re.match(r"exit (\d+)", verdict).group(1))  # type: ignore[union-attr]
    assert done.returncode == expected_exit, f"{verdict}\n{done.stdout}\n{done.stderr}"

    if not was_up:
        # Autostart started the cluster the profile names and said so truthfully.
        assert f"starting the local cluster {describe(spec)}" in done.stderr, done.stderr
        assert LocalCluster(spec).is_up()
    result: dict[str, Any] = json.loads((tmp_path / name / "result.json").read_text())
    counts = result["counts"]
    if expected_exit == 0:
        assert counts["lost"] == 0 and counts["silent"] == 0
    if expected_exit == 1 and re.search(r"\bsilent\b", verdict):
        assert counts["silent"] > 0, counts
    classes = {c.value for c in RecordClass}
    for named in set(re.findall(r"`([a-z]+)`", verdict)) & classes - _CONDITIONAL:
        assert counts[named] > 0, f"{name}: the README promises `{named}` records: {counts}"
