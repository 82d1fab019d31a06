"""`astrachaos scenarios`: list the shipped scenarios, show one resolved, validate files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.table import Table

app = typer.Typer(
    no_args_is_help=True,
    help="List, show and validate scenarios (YAML files describing load, faults and budgets).",
)

_TIMES = "\N{MULTIPLICATION SIGN}"
_SET_HELP = "Override a field: PATH=VALUE, e.g. workload.records=5000 (repeatable)."


@app.command("list")
def list_(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")
    ] = False,
) -> None:
    """List the scenarios found on the search path, one row each."""
    from astrachaos.cli.console import print_json, stdout
    from astrachaos.config.catalog import entries

    summaries = [_summary(name, path) for name, path in entries().items()]
    if as_json:
        print_json(summaries)
        return
    stdout.print(_table([_row(summary) for summary in summaries], stdout.width))


_HEADERS = ("name", "description", "pattern", f"writers{_TIMES}records", "injectors")


def _table(rows: list[tuple[str, str, str, str, str]], width: int) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(*_HEADERS)
    widths = [max([len(head), *(len(row[i]) for row in rows)]) for i, head in enumerate(_HEADERS)]
    for column, widest in zip(table.columns, widths, strict=True):
        column.no_wrap = True  # one line per scenario: only the description gives way
        column.min_width = widest
    # Each cell is padded by a space on both sides and each column followed by a border.
    spare = width - (sum(widths) - widths[1]) - 3 * len(_HEADERS) - 1
    description = table.columns[1]
    description.min_width, description.max_width = None, max(12, spare)
    description.overflow = "ellipsis"
    for row in rows:
        style = "red" if row[1].startswith("invalid: ") else None
        table.add_row(*(Text(cell) for cell in row), style=style)
    return table


def _summary(name: str, path: Path) -> dict[str, object]:
    from astrachaos.config.loader import load_scenario
    from astrachaos.errors import InvalidScenario

    try:
        scenario = load_scenario(path)
    except InvalidScenario as error:
        return {"name": name, "path": str(path), "error": error.message.splitlines()[0]}
    lines = scenario.description.strip().splitlines()
    return {
        "name": name,
        "path": str(path),
        "description": lines[0] if lines else "",
        "profile": scenario.target.profile,
        "pattern": str(scenario.pattern.name),
        "writers": scenario.workload.writers,
        "records": scenario.workload.records,
        "injectors": [spec.name for spec in scenario.injectors],
    }


def _row(summary: dict[str, object]) -> tuple[str, str, str, str, str]:
    name = str(summary["name"])
    if "error" in summary:
        return (name, f"invalid: {summary['error']}", "", "", "")
    injectors = summary["injectors"]
    assert isinstance(injectors, list)
    return (
        name,
        str(summary["description"]),
        str(summary["pattern"]),
        f"{summary['writers']}{_TIMES}{summary['records']}",
        ", ".join(injectors) or "-",
    )


@app.command()
def show(
    scenario: Annotated[
        str, typer.Argument(metavar="NAME|FILE", help="A scenario name or a YAML file.")
    ],
    overrides: Annotated[
        list[str] | None, typer.Option("--set", metavar="PATH=VALUE", help=_SET_HELP)
    ] = None,
) -> None:
    """Print the resolved scenario as YAML, every default filled in."""
    from astrachaos.cli.console import stdout
    from astrachaos.config.catalog import resolve
    from astrachaos.config.loader import dump_scenario, load_scenario

    resolved = load_scenario(resolve(scenario), overrides or ())
    stdout.print(dump_scenario(resolved), markup=False, highlight=False, end="", soft_wrap=True)


@app.command()
def validate(
    files: Annotated[
        list[str], typer.Argument(metavar="FILE", help="Scenario files (or names) to check.")
    ],
) -> None:
    """Check every file; exit 3 if any is invalid."""
    from rich.markup import escape

    from astrachaos.cli.console import print_error, stdout
    from astrachaos.config.catalog import resolve
    from astrachaos.config.loader import load_scenario
    from astrachaos.errors import ExitCode, InvalidScenario

    invalid = 0
    for name in files:
        try:
            loaded = load_scenario(resolve(name))
        except InvalidScenario as error:
            invalid += 1
            print_error(error)
            continue
        stdout.print(f"[green]OK[/] {escape(name)} ({escape(loaded.name)})", soft_wrap=True)
    if invalid:
        raise typer.Exit(int(ExitCode.INVALID_SCENARIO))
