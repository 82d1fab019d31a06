"""Placeholder for the `config` command group (being written)."""

import typer

app = typer.Typer(no_args_is_help=True, help="config commands")
