"""The `config` command group: show resolved connection profiles and where each value came from."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from astrachaos.config.settings import ResolvedProfile

app = typer.Typer(
    no_args_is_help=True,
    help="Inspect connection profiles (configs/*.yaml, .env and ASTRACHAOS_* variables).",
)


@app.command("show")
def show(
    profile: str = typer.Option(
        "local", "--profile", "-p", help="Profile name (configs/NAME.yaml)."
    ),
    config_dir: Path | None = typer.Option(
        None,
        "--config-dir",
        help="Profile directory (default: $ASTRACHAOS_CONFIG_DIR, else ./configs).",
    ),
    env_file: Path | None = typer.Option(
        None, "--env-file", help="A .env file (default: ./.env, if present)."
    ),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")
    ] = False,
) -> None:
    """Every resolved setting of a profile, its value (secrets hidden) and its source."""
    from astrachaos.cli.console import stdout
    from astrachaos.config.settings import load_profile

    resolved = load_profile(profile, config_dir, env_file)
    if as_json:
        from dataclasses import asdict

        from astrachaos.cli.console import print_json

        settings = [asdict(setting) for setting in resolved.settings()]
        print_json({"profile": profile, "kind": resolved.profile.kind, "settings": settings})
        return
    stdout.print(settings_table(resolved))


def settings_table(resolved: ResolvedProfile) -> Table:
    """A Rich table of every flattened setting, its redacted value and its source."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"profile {resolved.profile.name} ({resolved.profile.kind})")
    table.add_column("setting", style="bold")
    table.add_column("value")
    table.add_column("source", style="dim")
    for setting in resolved.settings():
        value = Text(_shown(setting.value))
        if not setting.applied:
            value.append("  (recorded, not applied)", style="yellow")
        source = Text(setting.source, style="cyan" if setting.source != "default" else "")
        table.add_row(setting.key, value, source)
    return table


def _shown(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "(empty)"
    return str(value)
