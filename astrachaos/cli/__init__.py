"""The command line: translates arguments into library calls, renders results, sets the exit code."""

from __future__ import annotations

import sys

import typer

from astrachaos.errors import AstrachaosError, ExitCode

app = typer.Typer(
    name="astrachaos",
    help="Chaos testing for applications that write to Apache Cassandra and Astra DB.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register() -> None:
    # Sub-command modules import only typer at module level; heavy libraries load inside commands.
    from astrachaos.cli import (
        config,
        doctor,
        injectors,
        local,
        proxy,
        reconcile,
        report,
        run,
        scenarios,
        suite,
        table,
    )

    app.add_typer(local.app, name="local")
    app.add_typer(config.app, name="config")
    app.add_typer(scenarios.app, name="scenarios")
    app.add_typer(table.app, name="table")
    app.add_typer(injectors.app, name="injectors")
    app.add_typer(proxy.app, name="proxy")
    doctor.register(app)
    run.register(app)
    report.register(app)
    suite.register(app)
    reconcile.register(app)


def main() -> None:
    """Run the CLI; every AstrachaosError becomes a one-paragraph message and its exit code."""
    _register()
    try:
        app()
    except AstrachaosError as error:
        from astrachaos.cli.console import print_error

        print_error(error)
        sys.exit(int(error.exit_code))
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
