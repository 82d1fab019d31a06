"""Partition reads on the real node: every row of every page; failures retried, then reported."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from astrachaos.driver.table import RunTable, ensure_table, run_table
from astrachaos.errors import ExitCode
from astrachaos.ledger.writer import Ledger
from astrachaos.run.runner import Runner
from astrachaos.scenario import Scenario
from astrachaos.verify.classify import RecordClass
from astrachaos.verify.reads import PartitionReader
from tests.integration.raw import raw_session

pytestmark = pytest.mark.integration

KEYSPACE = "astrachaos_verify_reads_test"
RUN_ID = "run-verify-reads"
ROWS_PER_BUCKET = {0: 101, 1: 7, 2: 60}  # bucket 3 holds nothing


@pytest.fixture
def written(local_cluster: Any) -> Iterator[tuple[Any, RunTable]]:
    """A run table of its own holding ROWS_PER_BUCKET rows of RUN_ID, dropped afterwards."""
    with raw_session(local_cluster.contact_points) as session:
        table = run_table(KEYSPACE, f"t_{uuid.uuid4().hex[:12]}", astra=False)
        ensure_table(session, table, 1, astra=False)
        try:
            insert = session.prepare(table.insert_cql(None))
            for bucket, count in ROWS_PER_BUCKET.items():
                for key in range(count):
                    rid = bucket * 1000 + key
                    session.execute(insert, (RUN_ID, bucket, key, rid, 0, 0, f"payload-{rid}", 1_000 + rid))
            yield session, table
        finally:
            session.execute(f"DROP TABLE IF EXISTS {table.qualified}")


def test_partitions_read_by_callbacks_hold_every_row_of_every_page(written: tuple[Any, RunTable]) -> None:
    session, table = written
    reader = PartitionReader(session, table, RUN_ID, page_size=7)  # many pages per partition

    got = dict(reader.scan_many([0, 1, 2, 3], "ONE", ahead=2))

    assert reader.rows_read == sum(ROWS_PER_BUCKET.values())
    assert sorted(got) == [0, 1, 2, 3]
    for bucket in range(4):
        rows = got[bucket]
        assert not isinstance(rows, Exception)
        assert len(rows) == ROWS_PER_BUCKET.get(bucket, 0)
        assert [row[0] for row in rows] == sorted(row[0] for row in rows)  # in clustering (key) order
        assert reader.stored(rows) == reader.scan(bucket, "ONE")  # what the one-by-one read sees


def test_a_partition_read_that_keeps_failing_is_retried_then_reported(
    written: tuple[Any, RunTable], caplog: pytest.LogCaptureFixture
) -> None:
    from cassandra.cluster import NoHostAvailable

    session, table = written
    reader = PartitionReader(session, table, RUN_ID, page_size=7)

    [(bucket, error)] = list(reader.scan_many([0], "THREE"))  # one node cannot give three replicas

    assert bucket == 0 and isinstance(error, NoHostAvailable) and "Unavailable" in str(error)
    assert sum("retrying" in record.getMessage() for record in caplog.records) == 2  # 3 attempts
    assert reader.rows_read == 0


@pytest.mark.parametrize("processes", [1, 2])
def test_a_run_keeps_its_acknowledged_totals_and_they_equal_the_sql_count(
    local_cluster: Any, tmp_path: Path, processes: int
) -> None:
    """What verification reads instead of counting: the writer's totals, also merged from segments."""
    scenario = Scenario.model_validate(
        {
            "name": "kept-totals",
            "seed": 5,
            "target": {"profile": "local"},
            "schema": {"table": "kept_totals_records"},
            "workload": {"writers": 2, "processes": processes, "records": 3000},
            "pattern": {"name": "careful"},
        }
    )
    result = Runner(scenario, tmp_path / "run").run()
    assert result.exit_code == ExitCode.OK
    with Ledger.open(tmp_path / "run" / "ledger.sqlite") as ledger, ledger.reading() as reader:
        meta = ledger.meta()
        started_ns = int(meta["started_ns"])
        assert meta["acked_totals"] == f"{started_ns} 3000" and meta["app_logged"].startswith("3000 ")
        assert reader.acked_totals(started_ns) == reader.counted_acked_totals(started_ns)
        assert reader.app_logged_success() == reader.counted_app_logged_success()
    counts = result.verification.counts
    assert counts[RecordClass.OK] == result.verification.acknowledged == 3000


@pytest.mark.parametrize("processes", [1, 2])
def test_partitions_as_written_are_matched_by_prints_and_a_tampered_row_is_still_caught(
    local_cluster: Any, tmp_path: Path, processes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each writer leaves its prints; verification matches whole partitions by them, digests only
    the partitions that changed behind its back, and finds exactly the records changed there."""
    from astrachaos.run.reverify import reverify
    from astrachaos.run.saved import open_run
    from astrachaos.verify.reads import WireRows

    scenario = Scenario.model_validate(
        {
            "name": "printed",
            "seed": 9,
            "target": {"profile": "local"},
            "schema": {"table": "printed_records", "buckets": 8},
            "workload": {"writers": 2, "processes": processes, "records": 4000},
            "pattern": {"name": "careful"},
        }
    )
    run_dir = tmp_path / "run"
    digested: list[int] = []
    stored = PartitionReader.stored

    def counting(reader: PartitionReader, rows: Any) -> Any:
        rows = list(rows)
        digested.append(len(rows))
        return stored(reader, rows)

    monkeypatch.setattr(PartitionReader, "stored", counting)
    as_sent: list[int] = []
    scan_many = PartitionReader.scan_many

    def recording(reader: PartitionReader, *args: Any, **kwargs: Any) -> Any:
        for bucket, rows in scan_many(reader, *args, **kwargs):
            as_sent.extend([bucket] if isinstance(rows, WireRows) else [])
            yield bucket, rows

    monkeypatch.setattr(PartitionReader, "scan_many", recording)
    result = Runner(scenario, run_dir).run()
    assert result.exit_code == ExitCode.OK and result.verification.counts[RecordClass.OK] == 4000
    assert digested == [], "every partition as written is matched by its writers' prints"
    assert sorted(as_sent) == list(range(8)), "every partition, all acknowledged, read as the node sent it"
    with Ledger.open(run_dir / "ledger.sqlite") as ledger, ledger.reading() as reader:
        assert [len(reader.planned_prints(bucket)) for bucket in range(8)] == [2] * 8  # both writers

    saved = open_run(run_dir)
    table = saved.primary.table(saved.profile(saved.primary))
    with raw_session(local_cluster.contact_points) as session:
        where = f"WHERE run_id = '{saved.run_id}' AND bucket = %s AND key = %s"
        session.execute(f"UPDATE {table.qualified} SET payload = 'changed' {where}", (3, 3 + 8 * 10))
        session.execute(f"DELETE FROM {table.qualified} {where}", (5, 5 + 8 * 400))
    digested.clear()
    again = reverify(run_dir)

    # Only the two partitions changed: digested at their first read and at their strong re-read.
    assert sorted(digested) == [499, 499, 500, 500]
    not_ok = {(n.key, n.record_class) for n in again.verification.not_ok}
    assert not_ok == {(83, RecordClass.CORRUPTED), (3205, RecordClass.LOST)}
    assert again.verification.counts[RecordClass.OK] == 3998


def test_partitions_read_as_the_node_sends_them_match_their_wire_prints_and_decode_as_the_driver_does(
    local_cluster: Any, tmp_path: Path
) -> None:
    """The bytes of each partition are exactly the planned rows' bytes as the writers hashed them."""
    from astrachaos.run.saved import open_run
    from astrachaos.verify.reads import WireRows
    from astrachaos.workload.prints import wire_match

    scenario = Scenario.model_validate(
        {
            "name": "wire",
            "seed": 3,
            "target": {"profile": "local"},
            "schema": {"table": "wire_records", "buckets": 4},
            "workload": {"writers": 2, "records": 1000, "special_characters": True, "payload_bytes": 300},
            "pattern": {"name": "careful"},
        }
    )
    run_dir = tmp_path / "run"
    assert Runner(scenario, run_dir).run().exit_code == ExitCode.OK
    saved = open_run(run_dir)
    table = saved.primary.table(saved.profile(saved.primary))
    ledger = Ledger.open(run_dir / "ledger.sqlite")
    with raw_session(local_cluster.contact_points) as session, ledger:
        reader = PartitionReader(session, table, saved.run_id, page_size=97)  # several pages each
        as_sent = dict(reader.scan_many(range(4), "ONE", as_sent=lambda bucket: bucket != 2))
        decoded = dict(reader.scan_many(range(4), "ONE"))
        with ledger.reading() as planned:
            for bucket in range(4):
                prints = planned.planned_prints(bucket)
                rows = as_sent[bucket]
                if bucket == 2:  # asked to be decoded
                    assert rows == decoded[bucket]
                    continue
                assert isinstance(rows, WireRows) and len(rows.pages) == 3  # 250 rows, pages of 97
                assert wire_match(len(rows), rows.cells, prints)
                assert rows.decoded() == decoded[bucket]
                assert not wire_match(len(rows), rows.cells[:-1] + b"!", prints)
