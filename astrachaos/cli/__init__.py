"""The command line: translates arguments into library calls, renders results, sets the exit code."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from astrachaos.errors import AstrachaosError, ExitCode

app = typer.Typer(
    name="astrachaos",
    help="Chaos testing for applications that write to Apache Cassandra and Astra DB.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _print_version(value: bool) -> None:
    if value:
        from astrachaos import __version__

        typer.echo(f"astrachaos {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="Debug logs on stderr: -v astrachaos's, -vv the Cassandra driver's too.",
        ),
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print nothing but errors (the exit code tells).")
    ] = False,
) -> None:
    """Chaos testing for applications that write to Apache Cassandra and Astra DB."""
    from astrachaos.cli.console import configure_output

    configure_output(verbose, quiet)
    if verbose:
        from astrachaos.cli.crash import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"  # an internal error prints its traceback inline


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
        # `python -m astrachaos` too is named astrachaos (usage lines, completion scripts).
        app(prog_name="astrachaos")
    except AstrachaosError as error:
        from astrachaos.cli.console import print_error

        print_error(error)
        sys.exit(int(error.exit_code))
    except KeyboardInterrupt:
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as error:  # anything else is a bug: say so, keep the traceback, exit 70
        sys.exit(int(_internal_error(error)))


def _internal_error(error: Exception) -> ExitCode:
    import traceback

    from astrachaos.cli import crash
    from astrachaos.cli.console import print_error, stderr

    environment = crash.as_environment_problem(error)
    if environment is not None:  # disk full, permissions: the machine, not a bug
        print_error(environment)
        return environment.exit_code

    saved = crash.save_traceback(error, crash.current_run_dir)
    if os.environ.get(crash.VERBOSE_ENV) == "1":
        sys.stderr.write("".join(traceback.format_exception(error)))
    from rich.markup import escape

    stderr.print(f"[bold red]error:[/] {escape(crash.bug_message(error, saved))}", soft_wrap=True)
    return ExitCode.INTERNAL_ERROR
