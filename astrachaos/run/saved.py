"""A run read back from its directory alone (also a run whose process was killed): the one reader.

Re-verification, `reconcile --run` and the reports open a run here; nothing else parses a run
directory's scenario, ledger meta or `result.json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from astrachaos.config.settings import Profile
from astrachaos.driver.table import RunTable, run_table
from astrachaos.errors import EnvironmentProblem, InvalidScenario
from astrachaos.events import FaultWindow
from astrachaos.ledger.extracts import LedgerExtracts, extracts_of
from astrachaos.ledger.writer import Ledger
from astrachaos.run import rundir
from astrachaos.run.result import RunResult
from astrachaos.run.targets import resolve_profile, secondary_profile
from astrachaos.scenario import Scenario


@dataclass(frozen=True)
class SavedSide:
    """One target of a saved run: its ledger and what the ledger says about where it wrote."""

    name: str  # "primary" or "secondary"
    ledger_path: Path
    meta: dict[str, str]

    def table(self, profile: Profile) -> RunTable:
        """The table this side wrote, as seen through `profile`."""
        return run_table(self.meta["keyspace"], self.meta["table"], astra=profile.kind == "astra")

    @property
    def started_ns(self) -> int:
        """When the write phase started (monotonic ns); 0 when the run died before it."""
        return int(self.meta.get("started_ns", "0") or 0)

    @contextmanager
    def ledger(self) -> Iterator[Ledger]:
        """This side's ledger, open for reading, closed on exit."""
        with Ledger.open(self.ledger_path) as ledger:
            yield ledger


@dataclass(frozen=True)
class SavedRun:
    """A run directory: the resolved scenario, each side's ledger, the result if there is one."""

    dir: rundir.RunDir
    scenario: Scenario
    primary: SavedSide
    secondary: SavedSide | None

    @property
    def path(self) -> Path:
        """The run directory."""
        return self.dir.path

    @property
    def run_id(self) -> str:
        """The run's id (the partition key of its rows)."""
        return self.primary.meta["run_id"]

    @property
    def sides(self) -> list[SavedSide]:
        """The primary side, then the secondary of a dual write."""
        return [self.primary] + ([self.secondary] if self.secondary is not None else [])

    def profile(self, side: SavedSide) -> Profile:
        """The profile `side` wrote through, with the scenario's driver options."""
        if side.name == "primary":
            return resolve_profile(self.scenario)
        profile = secondary_profile(self.scenario)
        if profile is None:
            raise InvalidScenario(f"{self.dir.scenario}: a secondary ledger but no target.secondary")
        return profile

    def fault_windows(self) -> list[FaultWindow]:
        """The fault windows the primary side recorded."""
        with self.primary.ledger() as ledger:
            return ledger.fault_windows()

    def ledger_extracts(self) -> LedgerExtracts:
        """What the reports take from the primary ledger (timeline, latencies), read in one pass."""
        with self.primary.ledger() as ledger:
            return extracts_of(ledger)

    def result(self) -> RunResult:
        """The result the run (or its last re-verification) wrote; a clear error when there is none."""
        path = self.dir.result
        try:
            return RunResult.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise EnvironmentProblem(
                f"no result.json in {self.path}",
                hint=f"a crashed run can be verified again: astrachaos verify {self.path}",
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise EnvironmentProblem(f"cannot read {path}: {error}") from None

    def result_if_any(self) -> RunResult | None:
        """The recorded result, or None when the run died before writing a readable one."""
        try:
            return self.result()
        except EnvironmentProblem:
            return None


def open_run(path: Path) -> SavedRun:
    """Open the run directory at `path`: its scenario validated, each side's ledger meta read."""
    run = rundir.RunDir(path)
    if not run.ledger.is_file() or not run.scenario.is_file():
        raise InvalidScenario(
            f"{path} is not a run directory: it needs {rundir.SCENARIO_FILE} and {rundir.LEDGER_FILE}"
        )
    try:
        scenario = Scenario.model_validate(yaml.safe_load(run.scenario.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as error:
        raise InvalidScenario(f"{run.scenario}: the run's saved scenario is not valid: {error}") from None
    primary = _side("primary", run.ledger)
    secondary = _side("secondary", run.secondary_ledger) if run.secondary_ledger.is_file() else None
    return SavedRun(run, scenario, primary, secondary)


def _side(name: str, path: Path) -> SavedSide:
    with Ledger.open(path) as ledger:
        return SavedSide(name, path, ledger.meta())
