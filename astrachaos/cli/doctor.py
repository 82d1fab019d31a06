"""`astrachaos doctor`: check Python, Java 17, Maven, the jar cache and a profile's database."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from astrachaos.cli.console import stdout

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def doctor(
    profile: Annotated[str, typer.Option(help="Profile whose database to reach.")] = "local",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")
    ] = False,
) -> None:
    """Check that this machine can run astrachaos; exit 4 if something must be fixed."""
    from astrachaos.doctor import exit_code, run_doctor

    checks = run_doctor(profile)
    if as_json:
        from dataclasses import asdict

        from astrachaos.cli.console import print_json

        print_json({"exit_code": int(exit_code(checks)), "checks": [asdict(c) for c in checks]})
        raise typer.Exit(int(exit_code(checks)))
    table = Table(title="astrachaos doctor")
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        status = check.status.value
        table.add_row(check.name, f"[{_STYLE[status]}]{status}[/]", check.detail, check.fix)
    stdout.print(table)
    raise typer.Exit(int(exit_code(checks)))


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command()(doctor)
