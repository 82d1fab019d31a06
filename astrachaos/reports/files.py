"""Report files of a run: which formats exist, what file each writes, rendering and writing them.

Formatters take typed data (a `RunResult`, the ledger's extracts) and return text; the caller
reads the run (`run.saved.open_run`) and says where the files go.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, assert_never

if TYPE_CHECKING:  # module level stays light (the CLI imports this for its choices)
    from astrachaos.ledger.extracts import LedgerExtracts
    from astrachaos.run.result import RunResult


class ReportFormat(StrEnum):
    """A report a run directory can hold."""

    HTML = "html"
    JUNIT = "junit"
    MARKDOWN = "markdown"
    JSON = "json"
    HDR = "hdr"


FILE_NAMES = {
    ReportFormat.HTML: "report.html",
    ReportFormat.JUNIT: "junit.xml",
    ReportFormat.MARKDOWN: "summary.md",
    ReportFormat.JSON: "result.json",  # written by the run itself; re-rendered, never rewritten
    ReportFormat.HDR: "latency.hlog",
}

FROM_LEDGER = frozenset({ReportFormat.HTML, ReportFormat.HDR})
"""Formats that need the ledger's extracts besides the result."""


def needs_ledger(formats: Iterable[ReportFormat]) -> bool:
    """Whether rendering `formats` needs the ledger's extracts."""
    return any(fmt in FROM_LEDGER for fmt in formats)


def render(fmt: ReportFormat, result: RunResult, ledger: LedgerExtracts | None = None) -> str:
    """The text of one report; `ledger` is required for the formats in FROM_LEDGER."""
    if fmt in FROM_LEDGER and ledger is None:
        raise ValueError(f"the {fmt.value} report needs the ledger's extracts")
    match fmt:
        case ReportFormat.HTML:
            from astrachaos.reports.html import page

            assert ledger is not None
            return page(result, ledger.timeline)
        case ReportFormat.JUNIT:
            from astrachaos.reports.junit import render_junit

            return render_junit(result)
        case ReportFormat.MARKDOWN:
            from astrachaos.reports.markdown import render_markdown

            return render_markdown(result)
        case ReportFormat.JSON:
            return json.dumps(result.to_json_dict(), indent=2, ensure_ascii=False) + "\n"
        case ReportFormat.HDR:
            from astrachaos.reports.hdr import render_hlog

            assert ledger is not None
            return render_hlog(ledger.latency_log)
        case _:
            assert_never(fmt)


def write_reports(
    directory: Path,
    formats: Iterable[ReportFormat],
    result: RunResult,
    ledger: LedgerExtracts | None = None,
) -> list[Path]:
    """Write each report into `directory` (JSON: result.json is already there); return the paths."""
    paths: list[Path] = []
    for fmt in dict.fromkeys(formats):
        path = directory / FILE_NAMES[fmt]
        if fmt is not ReportFormat.JSON:
            text = render(fmt, result, ledger)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        paths.append(path)
        if fmt is ReportFormat.HTML:
            paths.append(_write_not_ok_csv(directory, result))
    return paths


def _write_not_ok_csv(directory: Path, result: RunResult) -> Path:
    # The HTML page lists the first non-ok records; the file it links to has them all.
    from astrachaos.reports.html import NOT_OK_CSV, not_ok_csv

    path = directory / NOT_OK_CSV
    path.write_text(not_ok_csv(result), encoding="utf-8")
    return path
