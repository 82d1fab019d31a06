"""Report files in a run directory: which formats exist, what file each writes, writing them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any, assert_never

from astrachaos.errors import EnvironmentProblem

# Module level stays light (the CLI imports this for its choices): heavy imports are in functions.


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


def render(run_dir: Path, fmt: ReportFormat) -> str:
    """The text of one report of the run in `run_dir`."""
    from astrachaos.ledger.writer import Ledger
    from astrachaos.run.rundir import RunDir

    match fmt:
        case ReportFormat.HTML:
            from astrachaos.reports.html import render_html

            return render_html(run_dir)
        case ReportFormat.JUNIT:
            from astrachaos.reports.junit import render_junit

            return render_junit(load_result(run_dir))
        case ReportFormat.MARKDOWN:
            from astrachaos.reports.markdown import render_markdown

            return render_markdown(load_result(run_dir))
        case ReportFormat.JSON:
            return json.dumps(load_result(run_dir), indent=2, ensure_ascii=False) + "\n"
        case ReportFormat.HDR:
            from astrachaos.reports.hdr import render_hlog

            with Ledger.open(RunDir(run_dir).ledger) as ledger:
                return render_hlog(ledger)
        case _:
            assert_never(fmt)


def write_reports(run_dir: Path, formats: Iterable[ReportFormat]) -> list[Path]:
    """Write each report into `run_dir` (JSON: result.json is already there); return the paths."""
    paths: list[Path] = []
    for fmt in dict.fromkeys(formats):
        path = run_dir / FILE_NAMES[fmt]
        if fmt is not ReportFormat.JSON:
            text = render(run_dir, fmt)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
        paths.append(path)
        if fmt is ReportFormat.HTML:
            paths.append(_write_not_ok_csv(run_dir))
    return paths


def _write_not_ok_csv(run_dir: Path) -> Path:
    # The HTML page lists the first non-ok records; the file it links to has them all.
    from astrachaos.reports.html import NOT_OK_CSV, not_ok_csv

    path = run_dir / NOT_OK_CSV
    path.write_text(not_ok_csv(load_result(run_dir)), encoding="utf-8")
    return path


def load_result(run_dir: Path) -> dict[str, Any]:
    """The run's `result.json` as a dict; a clear error when the run has none."""
    from astrachaos.run.rundir import RunDir

    path = RunDir(run_dir).result
    try:
        result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise EnvironmentProblem(
            f"no result.json in {run_dir}",
            hint=f"a crashed run can be verified again: astrachaos verify {run_dir}",
        ) from exc
    except (OSError, ValueError) as exc:
        raise EnvironmentProblem(f"cannot read {path}: {exc}") from exc
    return result
