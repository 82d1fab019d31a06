"""The run directory: where a run keeps its scenario, ledger, app log and result."""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from astrachaos.errors import EnvironmentProblem, UsageProblem
from astrachaos.scenario import Scenario

SCENARIO_FILE = "scenario.yaml"
LEDGER_FILE = "ledger.sqlite"
SECONDARY_LEDGER_FILE = "ledger-secondary.sqlite"
APP_LOG_FILE = "app.log.jsonl"
RESULT_FILE = "result.json"
_INDENT_MAX_RECORDS = 10_000


@dataclass(frozen=True)
class RunDir:
    """Paths of one run's files."""

    path: Path

    @property
    def scenario(self) -> Path:
        """The resolved scenario, every default filled in."""
        return self.path / SCENARIO_FILE

    @property
    def ledger(self) -> Path:
        """The durable ledger (SQLite, WAL)."""
        return self.path / LEDGER_FILE

    @property
    def secondary_ledger(self) -> Path:
        """The ledger of a dual write's second target (only a dual-write run has one)."""
        return self.path / SECONDARY_LEDGER_FILE

    @property
    def app_log(self) -> Path:
        """The simulated application's own log (JSON lines)."""
        return self.path / APP_LOG_FILE

    @property
    def result(self) -> Path:
        """The run's result as JSON."""
        return self.path / RESULT_FILE


def time_stamp() -> str:
    """The current UTC time as a sortable name part (20261129T172900)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S")


def new_run_id(scenario: str) -> str:
    """A run id that sorts by time and names its scenario."""
    return f"{time_stamp()}-{_slug(scenario)}-{secrets.token_hex(3)}"


def path_for(out: Path | None, run_id: str) -> Path:
    """Where the run goes: `out`, or `runs/<run id>/` (`ASTRACHAOS_RUNS` moves `runs/`)."""
    return out if out is not None else Path(os.environ.get("ASTRACHAOS_RUNS", "runs")) / run_id


def refuse_if_used(path: Path) -> None:
    """A run never writes into a directory that already holds files: evidence is never overwritten."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        what = "is a file" if not path.is_dir() else "is not empty"
        raise UsageProblem(
            f"{path} {what}; a run never writes into an existing run directory "
            "(its scenario, ledger and result stay as they are)",
            hint="give --out a new directory, or leave --out out to get runs/<run id>/",
        )


def create(path: Path, scenario: Scenario) -> RunDir:
    """Make the run directory and save the resolved scenario; refuse one that already holds files.

    The scenario file is created exclusively, so two runs started at once into the same
    directory cannot both claim it.
    """
    refuse_if_used(path)
    run = RunDir(path)
    data = scenario.model_dump(mode="json", by_alias=True)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with run.scenario.open("x") as file:
            file.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    except FileExistsError as error:
        refuse_if_used(path)  # another run claimed it first
        raise EnvironmentProblem(f"cannot create the run directory {path}: {error.strerror}") from None
    except OSError as error:
        raise EnvironmentProblem(f"cannot create the run directory {path}: {error.strerror}") from None
    return run


def now_iso() -> str:
    """The current UTC time, to the second, as ISO 8601 (for run metadata)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_result(run: RunDir, result: dict[str, Any]) -> None:
    """Write `result.json` atomically (a crash never leaves half a file)."""
    tmp = run.result.with_suffix(".json.tmp")
    # Indented for reading, except a large result: json's C encoder only writes compact JSON, and
    # the Python one takes minutes over a few hundred thousand records.
    indent = 2 if len(result.get("records", ())) <= _INDENT_MAX_RECORDS else None
    tmp.write_text(json.dumps(result, indent=indent, ensure_ascii=False))
    tmp.replace(run.result)


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-")[:40] or "run"
