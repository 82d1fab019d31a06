"""`astrachaos injectors list`: every registered injector with its parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from astrachaos.injectors.interface import InjectorFactory

app = typer.Typer(no_args_is_help=True, help="Fault injectors registered (entry points).")


@app.command("list")
def list_injectors(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")
    ] = False,
) -> None:
    """Every injector: name, kind, and each parameter with its default and meaning."""
    from rich.table import Table

    from astrachaos.cli.console import stdout
    from astrachaos.injectors.registry import available

    if as_json:
        from astrachaos.cli.console import print_json

        print_json([_described(name, factory) for name, factory in sorted(available().items())])
        return
    for name, factory in sorted(available().items()):
        table = Table(title=f"{name}  ({factory.kind})", title_justify="left")
        for column in ("parameter", "default", "meaning"):
            table.add_column(column)
        for field, info in factory.Params.model_fields.items():
            default = "" if info.is_required() else repr(info.get_default(call_default_factory=True))
            table.add_row(field, default, info.description or "")
        stdout.print(table)


def _described(name: str, factory: InjectorFactory) -> dict[str, object]:
    params = [
        {
            "name": field,
            "required": info.is_required(),
            "default": None if info.is_required() else info.get_default(call_default_factory=True),
            "description": info.description or "",
        }
        for field, info in factory.Params.model_fields.items()
    ]
    return {"name": name, "kind": str(factory.kind), "params": params}
