"""Shared consoles for the CLI: results on stdout, errors and progress on stderr."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from astrachaos.errors import AstrachaosError

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)


def print_error(error: AstrachaosError) -> None:
    """Print an error as one paragraph (plus an optional hint), never a traceback."""
    stderr.print(f"[bold red]error:[/] {escape(error.message)}", soft_wrap=True)
    if error.hint:
        stderr.print(f"[yellow]hint:[/] {escape(error.hint)}", soft_wrap=True)
