"""Reconcile a file of expected keys with a table: which keys it lacks."""

from __future__ import annotations

from pathlib import Path

from astrachaos.errors import InvalidScenario
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
    found = lookup(side.session, side.schema, columns, read_keys(path, spec), strategy, concurrency, progress)
    if found.expected == 0:
        filtered = f" after --match {dict(spec.match)}" if spec.match else ""
        raise InvalidScenario(
            f"{path}: no expected key was read{filtered}; a reconcile of nothing would call any "
            "table equal",
            hint="check --key, --key-path/--key-regex and --match against a line of the file",
        )
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
