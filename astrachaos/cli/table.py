"""`astrachaos table`: show or drop the tables astrachaos owns (dropping needs --yes)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Tables astrachaos owns: drop them (with --yes).")


@app.command("drop")
def drop(
    profile: Annotated[str, typer.Option(help="Connection profile.")] = "local",
    keyspace: Annotated[str | None, typer.Option(help="Keyspace; default: the profile's.")] = None,
    table: Annotated[str, typer.Option(help="Table name (as in schema.table).")] = "records",
    yes: Annotated[bool, typer.Option("--yes", help="Really drop it.")] = False,
) -> None:
    """Drop a run table astrachaos created (refuses tables it does not own)."""
    from astrachaos.cli.console import stdout
    from astrachaos.config.settings import load_profile
    from astrachaos.driver.session import connect
    from astrachaos.driver.table import drop_table, run_table

    resolved = load_profile(profile).profile
    target = run_table(keyspace or resolved.keyspace, table, astra=resolved.kind == "astra")
    if not yes:
        stdout.print(f"would drop {target.qualified} on profile {profile}; add --yes to do it")
        raise typer.Exit(2)
    with connect(resolved) as connection:
        drop_table(connection.session, target)
    stdout.print(f"dropped {target.qualified}")
