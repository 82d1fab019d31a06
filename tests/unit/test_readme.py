"""The README documents every scenario field, command and exit code (docs cannot drift)."""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel

from astrachaos.errors import ExitCode
from astrachaos.scenario import Scenario

README = (Path(__file__).parents[2] / "README.md").read_text()


def field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        nested = [
            c
            for c in (info.annotation, *typing.get_args(info.annotation))
            if isinstance(c, type) and issubclass(c, BaseModel)
        ]
        # Driver options are listed by `config show` (the overrides mirror them, test_settings).
        if nested and path != "injectors" and not path.endswith(".driver"):
            paths += field_paths(nested[0], path + ".")
        else:
            paths.append(path)
    return paths


def test_every_scenario_field_is_documented() -> None:
    missing = [p for p in field_paths(Scenario) if f"`{p}`" not in README]
    assert missing == []


def test_every_exit_code_is_documented() -> None:
    for code in ExitCode:
        assert f"| {int(code)} |" in README


def test_every_command_is_documented() -> None:
    for command in (
        "run",
        "verify",
        "scenarios list",
        "scenarios show",
        "scenarios validate",
        "local up",
        "local status",
        "local logs",
        "local nodetool",
        "local down",
        "config show",
        "doctor",
        "table drop",
        "proxy",
        "proxy ctl",
        "verify --capture",
    ):
        assert f"`astrachaos {command}" in README, command
