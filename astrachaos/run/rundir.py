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

from astrachaos.scenario import Scenario

SCENARIO_FILE = "scenario.yaml"
LEDGER_FILE = "ledger.sqlite"
SECONDARY_LEDGER_FILE = "ledger-secondary.sqlite"
APP_LOG_FILE = "app.log.jsonl"
RESULT_FILE = "result.json"


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


def new_run_id(scenario: str) -> str:
    """A run id that sorts by time and names its scenario."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{_slug(scenario)}-{secrets.token_hex(3)}"


def create(out: Path | None, run_id: str, scenario: Scenario) -> RunDir:
    """Make the run directory (default `runs/<run id>/`) and save the resolved scenario."""
    path = out if out is not None else Path(os.environ.get("ASTRACHAOS_RUNS", "runs")) / run_id
    path.mkdir(parents=True, exist_ok=True)
    run = RunDir(path)
    data = scenario.model_dump(mode="json", by_alias=True)
    run.scenario.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return run


def now_iso() -> str:
    """The current UTC time, to the second, as ISO 8601 (for run metadata)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_result(run: RunDir, result: dict[str, Any]) -> None:
    """Write `result.json` atomically (a crash never leaves half a file)."""
    tmp = run.result.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    tmp.replace(run.result)


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-")[:40] or "run"
