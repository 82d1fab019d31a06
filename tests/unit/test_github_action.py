"""The composite GitHub Action at the root and the example workflow that uses it agree."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def test_the_action_is_composite_and_declares_every_input_it_uses() -> None:
    action = load(ROOT / "action.yml")
    assert action["runs"]["using"] == "composite"
    used = set(re.findall(r"inputs\.([a-z-]+)", (ROOT / "action.yml").read_text()))
    assert used == set(action["inputs"])
    for step in action["runs"]["steps"]:
        assert "uses" in step or step.get("shell") == "bash", step  # composite run steps need a shell


def test_the_action_fails_the_job_with_astrachaos_exit_code_after_the_reports() -> None:
    steps = load(ROOT / "action.yml")["runs"]["steps"]
    names = [step.get("name", step.get("uses", "")) for step in steps]
    last = steps[-1]
    assert last["run"].strip() == 'exit "${{ steps.run.outputs.exit-code }}"'
    assert "if" not in last
    always = ("Reports (HTML, Markdown, JUnit)", "actions/upload-artifact@v4", "Stop the local clusters")
    for needed in always:
        step = steps[names.index(needed)]
        assert step["if"] == "always()"
    uses = {step.get("uses", "").split("@")[0] for step in steps}
    assert {"actions/setup-python", "actions/setup-java"} <= uses


def test_the_example_workflow_uses_the_action_with_declared_inputs() -> None:
    inputs = set(load(ROOT / "action.yml")["inputs"])
    jobs = load(ROOT / "examples" / "github-actions.yml")["jobs"]
    uses = [step for job in jobs.values() for step in job["steps"] if step.get("uses") == "./"]
    assert uses
    for step in uses:
        assert set(step["with"]) <= inputs
