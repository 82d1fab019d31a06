"""`astrachaos verify --capture`: the capture of a proxy (or the Python API) against the tables."""

from __future__ import annotations

from pathlib import Path

import typer

from astrachaos.errors import UsageProblem


def verify_capture_command(
    capture: Path, out: Path | None, profile: str, app_log: Path | None, expected: Path | None,
    table: str | None, key: str | None, key_path: str | None, key_regex: str | None,
    match: list[str] | None, settle_s: float,
) -> None:  # fmt: skip
    """Classify every captured write; print the summary; exit 0, 1 (lost/silent) or 5 (unread)."""
    from astrachaos.capture.verify import Claims, verify_capture
    from astrachaos.cli.console import stdout
    from astrachaos.cli.reconcile import key_spec
    from astrachaos.config.settings import load_profile
    from astrachaos.driver.session import connect
    from astrachaos.reports.capture import render_capture_console
    from astrachaos.standalone.capture import schema_of
    from astrachaos.standalone.taped import complete_capture

    if out is None:
        raise UsageProblem("--capture needs --out OUT (the directory for result.json)")
    if app_log is not None and expected is not None:
        raise UsageProblem("give --app-log or --expected, not both")
    claims = None
    source = app_log or expected
    if source is not None:
        if table is None or key is None:
            raise UsageProblem("--app-log/--expected need --table KS.TABLE and --key COL[,COL...]")
        keyspace, dot, name = table.partition(".")
        if not dot:
            raise UsageProblem(f"--table {table!r} is not KS.TABLE")
        claims = Claims(source, key_spec(source, key, key_path, key_regex, match), keyspace, name)
    with (
        connect(load_profile(profile).profile) as connection,
        complete_capture(capture, schema_of(connection.session)) as readable,  # a proxy's tape replayed
    ):
        result = verify_capture(readable, connection.session, claims, out, settle_s=settle_s, source=capture)
    stdout.print(render_capture_console(result.to_json()))
    stdout.print(f"[dim]result: {out / 'result.json'}[/]")
    raise typer.Exit(int(result.exit_code))
