"""`--help` works for the root command, every command group and every command, and stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from astrachaos import cli


def registered_app() -> typer.Typer:
    """The root app with every sub-command registered (once)."""
    if not cli.app.registered_groups:
        cli._register()
    return cli.app


def command_paths() -> list[tuple[str, ...]]:
    """Every command and group under the root, as argument paths."""
    paths: list[tuple[str, ...]] = [()]

    def walk(command: object, prefix: tuple[str, ...]) -> None:
        # Typer may vendor its own click: look for sub-commands, not for a click class.
        for name, sub in getattr(command, "commands", {}).items():
            paths.append((*prefix, name))
            walk(sub, (*prefix, name))

    walk(typer.main.get_command(registered_app()), ())
    return paths


def test_the_expected_groups_are_registered() -> None:
    names = {path[0] for path in command_paths() if path}
    assert {"config", "local", "scenarios"} <= names
    assert ("config", "show") in command_paths()


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "astrachaos")
def test_help_works(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(registered_app(), [*path, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_config_show_help_names_the_profile_option() -> None:
    result = CliRunner().invoke(registered_app(), ["config", "show", "--help"])
    assert "--profile" in result.output


def test_help_does_not_import_the_driver() -> None:
    # `astrachaos --help` stays fast: the driver loads inside commands, not at import.
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from astrachaos import cli\n"
        "cli._register()\n"
        "CliRunner().invoke(cli.app, ['--help'])\n"
        "print(sorted(m for m in sys.modules if m == 'cassandra' or m.startswith('cassandra.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
