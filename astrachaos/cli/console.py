"""Shared consoles for the CLI: results on stdout, errors and progress on stderr."""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from astrachaos.errors import AstrachaosError

# Piped into a file or a CI log there is no terminal width: Rich would assume 80 columns and cut
# table cells ("RequestThrot…"). Lay out wide instead; $COLUMNS still wins when set.
PIPED_WIDTH = 1000


def _width(stream: TextIO) -> int | None:
    if os.environ.get("COLUMNS") or stream.isatty():
        return None
    return PIPED_WIDTH


stdout = Console(highlight=False, width=_width(sys.stdout))
stderr = Console(stderr=True, highlight=False, width=_width(sys.stderr))
# Errors have their own console so `--quiet` can silence stdout and stderr but never an error.
errors = Console(stderr=True, highlight=False, width=_width(sys.stderr))


def print_error(error: AstrachaosError) -> None:
    """Print an error as one paragraph (plus an optional hint), never a traceback."""
    errors.print(f"[bold red]error:[/] {escape(error.message)}", soft_wrap=True)
    if error.hint:
        errors.print(f"[yellow]hint:[/] {escape(error.hint)}", soft_wrap=True)


def configure_output(verbosity: int, quiet: bool) -> None:
    """`-v`: astrachaos DEBUG logs on stderr; `-vv`: the driver's too; `-q`: nothing but errors."""
    if quiet:
        stdout.quiet = True
        stderr.quiet = True
        logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(levelname)s %(message)s")
        return
    if verbosity <= 0:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    names = ["astrachaos"] + (["cassandra"] if verbosity >= 2 else [])
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)


def print_json(data: object) -> None:
    """Machine-readable output (`--json`): one JSON document on stdout, nothing else there."""
    import json

    stdout.out(json.dumps(data, indent=2, default=str), highlight=False)
