"""Reconcile a file of expected keys with a table: which keys it lacks."""

from __future__ import annotations

from pathlib import Path

from astrachaos.reconcile.keyfile import KeySpec, read_keys
from astrachaos.reconcile.lookup import KeyProgress, Strategy, key_columns, lookup
from astrachaos.reconcile.result import Mode, ReconcileResult
from astrachaos.reconcile.tables import Side


def reconcile_keys(
    path: Path, spec: KeySpec, side: Side, strategy: Strategy, concurrency: int,
    progress: KeyProgress | None = None,
) -> ReconcileResult:  # fmt: skip
    """Type the file's keys by the table's column types and list those absent from the table."""
    columns = key_columns(side.schema, spec.columns)
    keys = read_keys(path, spec)
    found = lookup(side.session, side.schema, columns, keys, strategy, concurrency, progress)
    return ReconcileResult(
        mode=Mode.EXPECTED,
        source=str(path),
        target=side.label,
        counts={
            "expected": found.expected,
            "present": found.present,
            "missing": len(found.missing),
            "duplicates_in_expected": found.expected - found.unique,
        },
        missing=found.missing,
        settings={
            "key": list(spec.columns),
            "format": spec.format.value,
            "key_path": spec.key_path,
            "key_regex": spec.regex,
            "match": dict(spec.match),
            "where": dict(spec.fixed),
            "lookup": strategy.value,
        },
        notes=("present and missing count unique keys; expected counts every occurrence",),
    )
