"""The files a reconciliation leaves in its directory: result.json and differing.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from astrachaos.reconcile.result import Mode, ReconcileResult
from astrachaos.reconcile.schema import JsonValue

RESULT_FILE = "result.json"
DIFFERING_FILE = "differing.csv"


def write_files(result: ReconcileResult, out: Path) -> list[Path]:
    """Write `result.json` (atomically) and, for tables, `differing.csv`; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / RESULT_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_json_dict(), indent=2, ensure_ascii=False))
    tmp.replace(path)
    written = [path]
    if result.mode is Mode.TABLES:
        written.append(_differing_csv(result, out / DIFFERING_FILE))
    return written


def _differing_csv(result: ReconcileResult, path: Path) -> Path:
    """One line per differing column: key columns, column, source value, target value."""
    key_names = list(result.differing[0].key) if result.differing else []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*key_names, "column", "source", "target"])
        for row in result.differing:
            key = [_cell(row.key[name]) for name in key_names]
            for column in row.columns:
                writer.writerow([*key, column.column, _cell(column.source), _cell(column.target)])
    return path


def _cell(value: JsonValue) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
