"""A suite: many scenario runs with overrides, each with the exit code it must give, one verdict."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from astrachaos.config.catalog import resolve
from astrachaos.config.loader import load_model, load_scenario
from astrachaos.errors import AstrachaosError, ExitCode, InvalidScenario, worst
from astrachaos.run.result import RunResult
from astrachaos.scenario import Scenario


class SuiteEntry(BaseModel):
    """One run of a suite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(..., description="Name of this entry (unique in the suite).")
    scenario: str = Field(..., description="Scenario name or file (relative to the suite file).")
    set: dict[str, Any] = Field(default_factory=dict, description="Field overrides: path → value.")
    expect_exit: int = Field(0, description="The exit code this run must give to pass.")


class Suite(BaseModel):
    """A suite file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("suite", description="Suite name.")
    description: str = Field("", description="What the suite proves.")
    runs: list[SuiteEntry] = Field(..., min_length=1, description="The runs, in order.")


@dataclass(frozen=True)
class EntryOutcome:
    """What one entry gave."""

    name: str
    expected: int
    actual: int
    run_dir: Path | None
    message: str
    result: RunResult | None = None  # None when the entry ended in an error

    @property
    def passed(self) -> bool:
        """The entry gave the exit code it must give."""
        return self.actual == self.expected


def load_suite(path: Path) -> Suite:
    """Read and validate a suite file (errors name the file, the line and the field)."""
    return load_model(path, Suite, "suite")


def suite_scenarios(path: Path) -> list[Scenario | InvalidScenario]:
    """The scenario of every entry, overrides applied (what `run_suite` will run).

    All are validated before any runs; an entry that must be refused (`expect_exit: 3`) keeps its
    error in its place, any other invalid entry raises.
    """
    suite = load_suite(path)
    return [_load_entry(path, entry) for entry in suite.runs]


def run_suite(
    path: Path,
    out: Path,
    fail_fast: bool = False,
    on_entry: Callable[[SuiteEntry], None] = lambda entry: None,
) -> list[EntryOutcome]:
    """Run every entry (all validated first); an entry that errors is recorded, not raised."""
    from astrachaos.run.runner import Runner

    suite = load_suite(path)
    scenarios = suite_scenarios(path)
    outcomes: list[EntryOutcome] = []
    for entry, scenario in zip(suite.runs, scenarios, strict=True):
        on_entry(entry)
        run_dir = out / entry.name
        if isinstance(scenario, InvalidScenario):  # an entry that must be refused, and was
            outcomes.append(EntryOutcome(entry.name, entry.expect_exit, 3, run_dir, scenario.message))
            continue
        result: RunResult | None = None
        try:
            result = Runner(scenario.model_copy(update={"name": entry.name}), run_dir).run()
            code, message = int(result.exit_code), result.verdict
        except AstrachaosError as error:
            if error.exit_code is ExitCode.INTERRUPTED:
                raise
            code, message = int(error.exit_code), error.message
        outcomes.append(EntryOutcome(entry.name, entry.expect_exit, code, run_dir, message, result))
        if fail_fast and not outcomes[-1].passed:
            break
    return outcomes


def _load_entry(path: Path, entry: SuiteEntry) -> Scenario | InvalidScenario:
    """The entry's scenario; an invalid one is kept as its error only if the entry expects exit 3."""
    try:
        return load_scenario(
            _scenario_path(path, entry.scenario), _overrides(entry.set), with_profiles=True
        )
    except InvalidScenario as error:
        if entry.expect_exit != ExitCode.INVALID_SCENARIO:
            raise
        return error


def suite_exit_code(outcomes: Sequence[EntryOutcome], total: int) -> ExitCode:
    """0 when every entry ran and gave its expected code; else the most severe failure."""
    failing = [o for o in outcomes if not o.passed]
    if not failing:
        return ExitCode.OK if len(outcomes) == total else ExitCode.EXPECTATIONS_UNMET
    # A failing entry counts at least as unmet expectations (it may have exited 0 where 1 was due).
    return worst([ExitCode.EXPECTATIONS_UNMET, *(o.actual for o in failing)])


def _scenario_path(suite_file: Path, scenario: str) -> Path:
    beside = suite_file.parent / scenario
    return beside if beside.is_file() else resolve(scenario)


def _overrides(values: dict[str, Any]) -> list[str]:
    return [
        f"{path}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
        for path, value in values.items()
    ]
