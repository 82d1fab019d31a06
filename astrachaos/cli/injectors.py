"""`astrachaos injectors list`: every registered injector with its parameters."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Fault injectors registered (entry points).")


@app.command("list")
def list_injectors() -> None:
    """Every injector: name, kind, and each parameter with its default and meaning."""
    from rich.table import Table

    from astrachaos.cli.console import stdout
    from astrachaos.injectors.registry import available

    for name, factory in sorted(available().items()):
        table = Table(title=f"{name}  ({factory.kind})", title_justify="left")
        for column in ("parameter", "default", "meaning"):
            table.add_column(column)
        for field, info in factory.Params.model_fields.items():
            default = "" if info.is_required() else repr(info.get_default(call_default_factory=True))
            table.add_row(field, default, info.description or "")
        stdout.print(table)
