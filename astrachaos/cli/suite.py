"""`astrachaos suite FILE`: run a list of scenarios with one aggregated verdict and exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add `suite` to the root app."""
    app.command("suite")(suite)


def suite(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME|FILE", help="A shipped suite (`comprehensive`) or a suite YAML file."
        ),
    ],
    out: Annotated[
        Path | None, typer.Option(help="A new directory for the runs (default runs/suite-<name>-<time>).")
    ] = None,
    fail_fast: Annotated[bool, typer.Option(help="Stop at the first entry that fails.")] = False,
    junit: Annotated[bool, typer.Option(help="Write junit.xml for all entries into --out.")] = True,
) -> None:
    """Run every entry of a suite; exit 0 only if each gave the exit code it must give."""
    from rich.table import Table

    from astrachaos.cli.console import stderr, stdout
    from astrachaos.config.catalog import resolve_suite
    from astrachaos.errors import InvalidScenario
    from astrachaos.reports.junit import render_junit_suites
    from astrachaos.run import signals
    from astrachaos.run.autostart import ensure_local_for, profiles_of
    from astrachaos.run.rundir import refuse_if_used, time_stamp
    from astrachaos.run.suite import load_suite, run_suite, suite_exit_code, suite_scenarios

    file = resolve_suite(name)
    spec = load_suite(file)
    signals.install()
    target = out or Path("runs") / f"suite-{spec.name}-{time_stamp()}"
    refuse_if_used(target)  # every entry's run directory must be new: refuse before running any
    valid = [s for s in suite_scenarios(file) if not isinstance(s, InvalidScenario)]
    for profile in profiles_of(valid):
        ensure_local_for(profile, lambda msg: stderr.print(f"[dim]{msg}[/]", soft_wrap=True))
    outcomes = run_suite(file, target, fail_fast, lambda e: stderr.print(f"[dim]… {e.name}[/]"))
    table = Table(title=f"suite {spec.name}", title_justify="left")
    for column in ("entry", "expected exit", "exit", "", "verdict"):
        table.add_column(column)
    for o in outcomes:
        mark = "[green]pass[/]" if o.passed else "[bold red]FAIL[/]"
        table.add_row(o.name, str(o.expected), str(o.actual), mark, o.message)
    stdout.print(table)
    if junit:
        results = [o.result for o in outcomes if o.result is not None]
        target.mkdir(parents=True, exist_ok=True)  # no entry may have run (all refused, as expected)
        (target / "junit.xml").write_text(render_junit_suites(results))
        stdout.print(f"[dim]junit: {target / 'junit.xml'}[/]")
    code = suite_exit_code(outcomes, len(spec.runs))
    stdout.print(
        f"suite {spec.name}: {sum(o.passed for o in outcomes)}/{len(spec.runs)} passed, exit {int(code)}"
    )
    raise typer.Exit(int(code))
