"""`astrachaos report`: render the reports of an earlier run from its directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astrachaos.reports.files import ReportFormat


def register(app: typer.Typer) -> None:
    """Add `report` to the root app."""
    app.command("report")(report)


def report(
    run_dir: Annotated[
        Path,
        typer.Argument(
            exists=True,
            file_okay=False,
            help="A run directory, or a capture verification --out (holds result.json).",
        ),
    ],
    format_: Annotated[
        list[ReportFormat] | None,
        typer.Option(
            "--format",
            "-f",
            help="Report to write (repeat for several): html report.html, junit junit.xml, "
            "markdown summary.md, hdr latency.hlog; json prints result.json to stdout.",
            case_sensitive=False,
        ),
    ] = None,
) -> None:
    """Write reports of a run into its directory and print their paths."""
    from rich.markup import escape

    from astrachaos.cli.console import stderr, stdout
    from astrachaos.reports.files import needs_ledger, render, write_reports
    from astrachaos.run.saved import open_run

    if _is_capture(run_dir):
        _capture_report(run_dir)
        return
    formats = list(dict.fromkeys(format_ or [ReportFormat.HTML]))
    saved = open_run(run_dir)
    result = saved.result()
    console = stdout
    if ReportFormat.JSON in formats:
        typer.echo(render(ReportFormat.JSON, result), nl=False)
        formats.remove(ReportFormat.JSON)
        console = stderr  # stdout holds the JSON alone, for pipes
    extracts = saved.ledger_extracts() if needs_ledger(formats) else None
    for path in write_reports(run_dir, formats, result, extracts):
        console.print(f"[dim]wrote[/] {escape(str(path))}", soft_wrap=True)


def _is_capture(directory: Path) -> bool:
    import json

    try:
        return bool(
            json.loads((directory / "result.json").read_text(encoding="utf-8")).get("kind") == "capture"
        )
    except (OSError, ValueError):
        return False


def _capture_report(directory: Path) -> None:
    """A capture verification: print it and write summary.md next to result.json."""
    import json

    from astrachaos.cli.console import stdout
    from astrachaos.reports.capture import render_capture_console, render_capture_markdown

    result = json.loads((directory / "result.json").read_text(encoding="utf-8"))
    stdout.print(render_capture_console(result))
    path = directory / "summary.md"
    path.write_text(render_capture_markdown(result), encoding="utf-8")
    stdout.print(f"[dim]wrote[/] {path}", soft_wrap=True)
