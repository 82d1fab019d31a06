"""The run table on the real node: an older table gains `applied`; appends land once per application."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from astrachaos.driver.table import OWNER_MARK, RunTable, ensure_table, run_table
from astrachaos.errors import EnvironmentProblem
from tests.integration.raw import raw_session

pytestmark = pytest.mark.integration

KEYSPACE = "astrachaos_table_test"
# The run table as astrachaos created it before the `append` statement kind existed.
BEFORE_APPEND = (
    "run_id text, bucket int, key bigint, record_id bigint, writer int, batch_no int, payload text,"
    " PRIMARY KEY ((run_id, bucket), key)"
)


@pytest.fixture
def scratch(local_cluster: Any) -> Iterator[tuple[Any, RunTable]]:
    """A raw session and a run table name of its own, dropped afterwards."""
    with raw_session(local_cluster.contact_points) as session:
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        table = run_table(KEYSPACE, f"t_{uuid.uuid4().hex[:12]}", astra=False)
        try:
            yield session, table
        finally:
            session.execute(f"DROP TABLE IF EXISTS {table.qualified}")


def columns(session: Any, table: RunTable) -> set[str]:
    rows = session.execute(
        "SELECT column_name FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s",
        (table.keyspace, table.name),
    )
    return {row.column_name for row in rows}


def test_a_run_table_made_before_appends_gets_the_applied_column(scratch: tuple[Any, RunTable]) -> None:
    session, table = scratch
    session.execute(f"CREATE TABLE {table.qualified} ({BEFORE_APPEND}) WITH comment = '{OWNER_MARK}'")
    assert "applied" not in columns(session, table)

    ensure_table(session, table, replication_factor=1, astra=False)
    ensure_table(session, table, replication_factor=1, astra=False)  # a second run: nothing to add

    assert "applied" in columns(session, table)


def test_a_table_astrachaos_does_not_own_is_refused_and_not_altered(scratch: tuple[Any, RunTable]) -> None:
    session, table = scratch
    session.execute(f"CREATE TABLE {table.qualified} ({BEFORE_APPEND}) WITH comment = 'the app'")

    with pytest.raises(EnvironmentProblem, match="not owned by astrachaos"):
        ensure_table(session, table, replication_factor=1, astra=False)

    assert "applied" not in columns(session, table)


def test_an_append_applied_twice_lands_twice_even_with_the_same_timestamp(
    scratch: tuple[Any, RunTable],
) -> None:
    session, table = scratch
    ensure_table(session, table, replication_factor=1, astra=False)
    append = session.prepare(table.append_cql(ttl_s=None))
    stamp = time.time_ns() // 1000
    for _ in range(2):  # the same bound statement sent twice: an applied write, then its retry
        session.execute(append, (stamp, 7, "payload", [7], "run", 0, 7))

    row = session.execute(f"SELECT record_id, payload, applied FROM {table.qualified}").one()

    assert (row.record_id, row.payload, row.applied) == (7, "payload", [7, 7])
