"""Reconcile a run's ledger with its table: records acknowledged or logged by the app, yet absent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from astrachaos.errors import Inconclusive, InvalidScenario
from astrachaos.events import DriverOutcome
from astrachaos.ledger.writer import LedgerRecord
from astrachaos.reconcile.result import Mode, ReconcileResult
from astrachaos.run.saved import open_run
from astrachaos.verify.partitions import reread_levels
from astrachaos.verify.reads import PartitionReader, StoredRow

log = logging.getLogger(__name__)
BucketProgress = Callable[[int, int], None]  # (buckets read, buckets in all)


def reconcile_run(
    path: Path, profile_name: str | None = None, progress: BucketProgress | None = None
) -> ReconcileResult:
    """Read every bucket of the run at the strongest level and list expected records that are absent.

    Expected = acknowledged by the driver or logged as stored by the application. A bucket that
    cannot be read makes the result inconclusive (an Inconclusive error).
    """
    from astrachaos.config.settings import load_profile
    from astrachaos.driver.session import connect

    saved = open_run(path)
    scenario = saved.scenario
    profile = load_profile(profile_name).profile if profile_name else saved.profile(saved.primary)
    table = saved.primary.table(profile)
    run_id = saved.run_id
    with saved.primary.ledger() as ledger:
        total_buckets, read_buckets = len(ledger.buckets()), 0
        records = expected = present = 0
        missing: list[dict[str, object]] = []
        with connect(profile) as connection:
            reader = PartitionReader(connection.session, table, run_id, scenario.verify.page_size)
            bucket_rows: dict[int, StoredRow] = {}
            current: int | None = None
            for record in ledger.iter_records():
                records += 1
                if record.bucket != current:
                    current = record.bucket
                    bucket_rows = _read(reader, current, scenario.verify.reread_consistency)
                    read_buckets += 1
                    if progress is not None:
                        progress(read_buckets, total_buckets)
                if not _expected(record):
                    continue
                expected += 1
                if record.key in bucket_rows:
                    present += 1
                else:
                    missing.append(
                        {
                            "run_id": run_id,
                            "bucket": record.bucket,
                            "key": record.key,
                            "record_id": record.record_id,
                            "outcome": None if record.outcome is None else record.outcome.value,
                            "app_logged": record.app_logged,
                        }
                    )
    if records == 0:
        raise InvalidScenario(
            f"{path}: the ledger holds no planned record; a reconcile of nothing would call the table equal"
        )
    return ReconcileResult(
        mode=Mode.RUN,
        source=str(path),
        target=f"{profile.name}:{table.qualified}",
        counts={"records": records, "expected": expected, "present": present, "missing": len(missing)},
        missing=tuple(missing),
        settings={"run_id": run_id, "consistency": scenario.verify.reread_consistency},
        notes=("expected = acknowledged by the driver or logged as stored by the application",),
    )


def _expected(record: LedgerRecord) -> bool:
    return record.outcome is DriverOutcome.ACKED or record.app_logged is True


def _read(reader: PartitionReader, bucket: int, consistency: str) -> dict[int, StoredRow]:
    levels = reread_levels(consistency)
    for level in levels:
        try:
            return reader.read(bucket, level)
        except Exception as error:
            log.warning("bucket %s at %s: %s", bucket, level, error)
    raise Inconclusive(f"bucket {bucket} of the run could not be read at {', '.join(levels)}")
