"""astrachaos.chaos() on a user's own session and table, every verdict checked by raw reads."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cassandra import OperationTimedOut, Unavailable, WriteTimeout
from cassandra.cluster import Cluster
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import BatchStatement

import astrachaos
from astrachaos import client_fault
from astrachaos.local import LocalCluster
from tests.integration.raw import raw_session

pytestmark = pytest.mark.integration

KS = "pyapi_shop"
TABLE = f"{KS}.orders"
INSERT = f"INSERT INTO {TABLE} (customer, order_id, note) VALUES (?, ?, ?)"


@pytest.fixture(scope="module")
def user_session(local_cluster: LocalCluster) -> Iterator[Any]:
    """The user's own Cluster and Session, and their own table (not made by astrachaos)."""
    cluster = Cluster(list(local_cluster.contact_points), protocol_version=5)
    session = cluster.connect()
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication ="
        " {'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (customer text, order_id int, note text,"
        " PRIMARY KEY (customer, order_id)) WITH comment = 'the shop team owns this table'"
    )
    yield session
    cluster.shutdown()


@pytest.fixture(scope="module")
def raw(local_cluster: LocalCluster) -> Iterator[Any]:
    with raw_session(list(local_cluster.contact_points)) as session:
        yield session


def customer() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


def present(raw: Any, who: str) -> dict[int, str]:
    """order_id -> note of every row of one customer, read at ALL without astrachaos."""
    from cassandra import ConsistencyLevel
    from cassandra.query import SimpleStatement

    statement = SimpleStatement(
        f"SELECT order_id, note FROM {TABLE} WHERE customer = %s", consistency_level=ConsistencyLevel.ALL
    )
    return {row.order_id: row.note for row in raw.execute(statement, (who,))}


def classes_by_order(verdict: astrachaos.Verdict) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for record in verdict.records:
        found.setdefault(int(record.key["order_id"]), set()).add(record.write_class.value)
    return found


def test_dropped_writes_are_lost_and_listed_by_key(user_session: Any, raw: Any, tmp_path: Path) -> None:
    who = customer()
    drop = {"name": "client", "params": {"action": "drop"}, "schedule": {"probability": 0.3}}
    with astrachaos.chaos(user_session, faults=[drop], out=tmp_path / "c", seed=7) as chaos:
        insert = chaos.session.prepare(INSERT)
        for n in range(100):
            chaos.session.execute(insert, (who, n, f"note {n}"))  # a drop reports success
        verdict = chaos.verify(settle_s=0.1)
        stats = chaos.stats()
    rows = present(raw, who)
    lost = {n for n, classes in classes_by_order(verdict).items() if "lost" in classes}
    assert stats.by_type == {"drop": stats.injected} and stats.injected == len(lost) > 0
    assert verdict.counts["lost"] == len(lost) and verdict.counts["ok"] == 100 - len(lost)
    assert set(rows) == set(range(100)) - lost  # what the raw read holds, exactly
    assert verdict.exit_code == 1
    assert (tmp_path / "c" / "result.json").is_file()
    with pytest.raises(AssertionError) as failure:
        verdict.assert_no_loss(limit=3)
    text = str(failure.value)
    assert f"'customer': '{who}'" in text and f"and {len(lost) - 3} more" in text


def test_concurrent_batches_and_simple_statements_are_all_captured(
    user_session: Any, raw: Any, tmp_path: Path
) -> None:
    who = customer()
    with astrachaos.chaos(user_session, out=tmp_path / "c") as chaos:
        session = chaos.session
        insert = session.prepare(INSERT)
        results = execute_concurrent_with_args(session, insert, [(who, n, "concurrent") for n in range(50)])
        assert all(r.success for r in results)
        batch = BatchStatement()
        for n in range(50, 60):
            batch.add(insert, (who, n, "batch"))
        session.execute(batch)
        for n in range(60, 70):
            simple = f"INSERT INTO {TABLE} (customer, order_id, note) VALUES (%s, %s, %s)"
            session.execute(simple, (who, n, "simple"))
        session.execute_async(
            f"UPDATE {TABLE} SET note = %(note)s WHERE customer = %(who)s AND order_id = %(n)s",
            {"note": "updated", "who": who, "n": 0},
        ).result()
        session.execute(f"DELETE FROM {TABLE} WHERE customer = %s AND order_id = %s", (who, 69))
        assert len(list(session.execute(f"SELECT * FROM {TABLE} WHERE customer = %s", (who,)))) == 69
        verdict = chaos.verify(settle_s=0.1)
    rows = present(raw, who)
    assert set(rows) == set(range(69)) and rows[0] == "updated"
    # 70 inserts + 1 update + 1 delete; the insert of order 0 was overwritten by the update,
    # the insert of 69 deleted: classes come from the table, not from what the code was told
    assert verdict.counts["captured"] == 72 and verdict.counts["unverifiable"] == 0
    assert classes_by_order(verdict) == {0: {"overwritten"}, 69: {"deleted"}}
    assert verdict.exit_code == 0
    verdict.assert_no_loss()


def test_applied_then_error_rows_are_recovered_and_present(
    user_session: Any, raw: Any, tmp_path: Path
) -> None:
    who = customer()
    fault = client_fault("applied-then-error", probability=0.3)
    told_error: set[int] = set()
    with astrachaos.chaos(user_session, faults=fault, out=tmp_path / "c", seed=3) as chaos:
        insert = chaos.session.prepare(INSERT)
        for n in range(80):
            try:
                chaos.session.execute(insert, (who, n, "x"))
            except OperationTimedOut:
                told_error.add(n)  # an app that does not retry
        verdict = chaos.verify(settle_s=0.1)
    rows = present(raw, who)
    assert told_error and set(rows) == set(range(80))  # applied, all of them
    recovered = {n for n, c in classes_by_order(verdict).items() if c == {"recovered"}}
    assert recovered == told_error and verdict.counts["recovered"] == len(told_error)
    assert verdict.exit_code == 0


def test_latency_past_the_client_timeout_is_a_timeout_on_a_written_row(
    user_session: Any, raw: Any, tmp_path: Path
) -> None:
    who = customer()
    with astrachaos.chaos(user_session, out=tmp_path / "c") as chaos:
        chaos.set_mode("latency-after", latency_ms=400)
        chaos.set_level(1.0)
        insert = chaos.session.prepare(INSERT)
        started = time.monotonic()
        with pytest.raises(OperationTimedOut):
            chaos.session.execute(insert, (who, 1, "late"), timeout=0.2)
        assert 0.15 < time.monotonic() - started < 2
        verdict = chaos.verify(settle_s=0.1)
    assert present(raw, who) == {1: "late"}
    assert verdict.counts["recovered"] == 1


def test_the_seeds_controls_set_level_mode_failure_enable_disable_stats(
    user_session: Any, raw: Any, tmp_path: Path
) -> None:
    who = customer()
    with astrachaos.chaos(user_session, out=tmp_path / "c") as chaos:
        insert = chaos.session.prepare(INSERT)
        chaos.set_failure("Unavailable")
        chaos.set_level(1.0)
        with pytest.raises(Unavailable):
            chaos.session.execute(insert, (who, 1, "a"))
        chaos.set_failure(WriteTimeout)
        with pytest.raises(WriteTimeout):
            chaos.session.execute(insert, (who, 2, "b"))
        chaos.disable()
        chaos.session.execute(insert, (who, 3, "c"))
        assert chaos.stats() == astrachaos.ChaosStats(3, 2, 2 / 3, {"Unavailable": 1, "WriteTimeout": 1})
        chaos.reset_stats()
        chaos.enable()
        chaos.set_mode("drop")
        chaos.session.execute(insert, (who, 4, "d"))
        assert chaos.stats().by_type == {"drop": 1}
        verdict = chaos.verify(settle_s=0.1)
    assert present(raw, who) == {3: "c"}
    assert {k: c for k, c in classes_by_order(verdict).items()} == {1: {"failed"}, 2: {"failed"}, 4: {"lost"}}


def test_clock_skew_shifts_the_write_timestamp(user_session: Any, raw: Any, tmp_path: Path) -> None:
    who = customer()
    skew = client_fault("clock-skew", skew_ms=-60_000)
    with astrachaos.chaos(user_session, faults=skew, out=tmp_path / "c") as chaos:
        chaos.session.execute(chaos.session.prepare(INSERT), (who, 1, "old clock"))
        chaos.verify(settle_s=0.1).assert_no_loss()
    (written,) = raw.execute(f"SELECT WRITETIME(note) AS at FROM {TABLE} WHERE customer = %s", (who,))
    assert abs(time.time() - 60 - written.at / 1e6) < 5


def test_session_reset_cuts_writes_in_flight(user_session: Any, raw: Any, tmp_path: Path) -> None:
    who = customer()
    reset = client_fault("session-reset", start_s=0.3, duration_s=0.2)
    with astrachaos.chaos(user_session, faults=reset, out=tmp_path / "c") as chaos:
        insert = chaos.session.prepare(INSERT)
        futures = []
        deadline = time.monotonic() + 1.0
        n = 0
        while time.monotonic() < deadline:
            futures.append((n, chaos.session.execute_async(insert, (who, n, "x"))))
            n += 1
            time.sleep(0.002)
        errors = {}
        for order, future in futures:
            try:
                future.result()
            except Exception as error:
                errors[order] = type(error).__name__
        verdict = chaos.verify(settle_s=0.1)
    assert errors, "the reset cut no request"
    rows = present(raw, who)
    by_order = classes_by_order(verdict)
    for order in errors:  # every write the code saw fail is failed, indeterminate or recovered
        assert by_order[order] <= {"failed", "indeterminate", "recovered"}
        assert ("recovered" in by_order[order]) == (order in rows)
    assert verdict.counts["lost"] == 0


def test_a_user_table_is_only_read(user_session: Any, raw: Any, tmp_path: Path) -> None:
    def schema() -> list[Any]:
        tables = raw.execute("SELECT * FROM system_schema.tables WHERE keyspace_name = %s", (KS,))
        columns = raw.execute("SELECT * FROM system_schema.columns WHERE keyspace_name = %s", (KS,))
        return sorted(map(tuple, tables)) + sorted(map(tuple, columns))

    before = schema()
    who = customer()
    half = client_fault("fail", probability=0.5)
    with astrachaos.chaos(user_session, faults=half, out=tmp_path / "c") as chaos:
        insert = chaos.session.prepare(INSERT)
        written = set()
        for n in range(40):
            try:
                chaos.session.execute(insert, (who, n, "mine"))
                written.add(n)
            except WriteTimeout:
                pass
        chaos.verify(settle_s=0.1)
    assert schema() == before
    assert set(present(raw, who)) == written  # the rows the code wrote, and nothing else


def test_the_session_is_a_drop_in_for_reads_and_unknown_attributes(user_session: Any, tmp_path: Path) -> None:
    every = client_fault("fail", probability=1.0)
    with astrachaos.chaos(user_session, faults=every, out=tmp_path / "c") as chaos:
        (row,) = chaos.session.execute("SELECT release_version FROM system.local")  # reads: never faulted
        assert row.release_version.startswith("5.")
        assert chaos.session.keyspace == user_session.keyspace
        assert chaos.session.cluster is user_session.cluster
        assert chaos.session.wrapped is user_session
        lock = threading.Event()
        future = chaos.session.execute_async(INSERT.replace("?", "%s"), ("x", 1, "y"))
        future.add_errback(lambda e: lock.set())
        assert lock.wait(5)


def test_an_out_directory_holding_a_capture_is_never_reused(user_session: Any, tmp_path: Path) -> None:
    astrachaos.chaos(user_session, out=tmp_path / "c").close()
    with pytest.raises(FileExistsError):
        astrachaos.chaos(user_session, out=tmp_path / "c")


def test_a_network_fault_is_refused_with_the_proxy_hint(user_session: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="astrachaos proxy"):
        astrachaos.chaos(user_session, faults=[{"name": "network", "params": {}}], out=tmp_path / "c")
