"""`astrachaos run` and `astrachaos verify`: thin wrappers over the runner and re-verification."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from astrachaos.errors import ExitCode, worst

if TYPE_CHECKING:
    from astrachaos.run.metrics import MetricsServer


def register(app: typer.Typer) -> None:
    """Add `run` and `verify` to the root app."""
    app.command("run")(run)
    app.command("verify")(verify_run)


def run(
    scenarios: Annotated[list[str], typer.Argument(help="Scenario names or YAML files.")],
    out: Annotated[Path | None, typer.Option(help="Run directory (several: one per scenario).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a field: path=value.")] = None,
    random_seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed (recorded in the run).")
    ] = None,
    quiet: Annotated[bool, typer.Option(help="Print only the verdict line.")] = False,
    html: Annotated[bool, typer.Option(help="Also write report.html into the run directory.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print result.json on stdout.")] = False,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics of the runs on this port.")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Address the metrics are served on.")] = "127.0.0.1",
    metrics_linger: Annotated[
        float, typer.Option(help="Seconds to keep serving metrics after the last run.")
    ] = 0.0,
) -> None:
    """Run scenarios against the database, verify every record, exit with the verdict."""
    from astrachaos.cli import crash
    from astrachaos.cli.console import stderr, stdout
    from astrachaos.cli.live import live_progress
    from astrachaos.config.catalog import resolve
    from astrachaos.config.loader import load_scenario
    from astrachaos.reports.console import render
    from astrachaos.run import signals
    from astrachaos.run.autostart import ensure_local_for, profiles_of
    from astrachaos.run.runner import Runner

    loaded = [
        load_scenario(resolve(name), set_ or (), random_seed, with_profiles=True) for name in scenarios
    ]
    signals.install()
    codes: list[ExitCode] = []
    results: list[object] = []
    metrics = _metrics_server(metrics_port, metrics_host)
    for scenario in loaded:
        for profile in profiles_of([scenario]):
            ensure_local_for(profile, lambda msg: stderr.print(f"[dim]{msg}[/]", soft_wrap=True))
        target = out if out is None or len(loaded) == 1 else out / scenario.name
        runner = Runner(scenario, target)
        crash.current_run_dir = runner.dir.path
        if metrics:
            metrics.watch(runner)
        with live_progress(runner.progress, stderr, quiet):
            result = runner.run()
        if metrics:
            metrics.finished(runner, result.to_json_dict(max_records=0))
        if as_json:
            results.append(result.to_json_dict())
        elif quiet:
            stdout.print(f"{scenario.name}: exit {int(result.exit_code)} ({result.verdict})")
        else:
            stdout.print(render(result))
        # With --json, stdout holds the JSON alone: the paths go to stderr.
        paths = stderr if as_json else stdout
        paths.print(f"[dim]run directory: {runner.dir.path}[/]")
        if html:
            from astrachaos.reports.files import ReportFormat, write_reports
            from astrachaos.run.saved import open_run

            extracts = open_run(runner.dir.path).ledger_extracts()
            for path in write_reports(runner.dir.path, [ReportFormat.HTML], result, extracts):
                paths.print(f"[dim]report: {path}[/]")
        codes.append(result.exit_code)
    if as_json:
        from astrachaos.cli.console import print_json

        print_json(results[0] if len(results) == 1 else results)
    if metrics:
        import time

        time.sleep(metrics_linger)
        metrics.close()
    raise typer.Exit(int(worst(codes)))  # the most severe scenario decides


def verify_run(
    run_dir: Annotated[
        Path | None, typer.Argument(help="A run directory (also one whose run crashed).")
    ] = None,
    capture: Annotated[
        Path | None, typer.Option(help="A capture directory (astrachaos proxy --capture).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="With --capture: directory for result.json.")] = None,
    profile: Annotated[
        str, typer.Option(help="With --capture: the profile to read the tables with.")
    ] = "local",
    app_log: Annotated[Path | None, typer.Option(help="The app's log: keys it logged as stored.")] = None,
    expected: Annotated[Path | None, typer.Option(help="A key file of keys the app claims stored.")] = None,
    table: Annotated[str | None, typer.Option(help="KS.TABLE the claimed keys belong to.")] = None,
    key: Annotated[str | None, typer.Option(help="Key columns COL[,COL...] the claims fill.")] = None,
    key_path: Annotated[str | None, typer.Option(help="JSON lines: dotted path to the key(s).")] = None,
    key_regex: Annotated[
        str | None, typer.Option(help="Any text: regex with named groups = columns.")
    ] = None,
    match: Annotated[list[str] | None, typer.Option(help="JSON lines: keep lines with FIELD=VALUE.")] = None,
    settle_s: Annotated[float, typer.Option(min=0, help="Wait before re-reading at ALL.")] = 1.0,
) -> None:
    """Re-verify a run from its ledger, or (--capture) judge every write an application made."""
    if capture is not None:
        from astrachaos.cli.capture import verify_capture_command

        verify_capture_command(capture, out, profile, app_log, expected, table, key, key_path, key_regex,
                               match, settle_s)  # fmt: skip
        return
    if run_dir is None:
        from astrachaos.errors import UsageProblem

        raise UsageProblem("give a run directory, or --capture DIR --out OUT")
    if not run_dir.is_dir():
        from astrachaos.errors import UsageProblem

        raise UsageProblem(f"{run_dir}: no such run directory")
    from astrachaos.cli.console import stdout
    from astrachaos.reports.console import render
    from astrachaos.run.reverify import reverify

    result = reverify(run_dir)
    stdout.print(render(result))
    stdout.print(f"[dim]result: {run_dir / 'result.json'}[/]")
    raise typer.Exit(int(result.exit_code))


def _metrics_server(port: int | None, host: str) -> MetricsServer | None:
    if port is None:
        return None
    from astrachaos.cli.console import stderr
    from astrachaos.errors import EnvironmentProblem
    from astrachaos.run.metrics import MetricsServer

    try:
        server = MetricsServer(port, host)
    except OSError as error:
        raise EnvironmentProblem(f"cannot serve metrics on {host}:{port}: {error.strerror}") from None
    stderr.print(f"[dim]metrics: http://{host}:{server.port}/metrics[/]", soft_wrap=True)
    return server

