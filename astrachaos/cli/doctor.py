"""Placeholder for `doctor` (being written)."""

import typer


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
