"""A three-node local cluster: every node up, RF=3 at QUORUM, and a node crash survived."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from astrachaos.local import LocalCluster

pytestmark = [pytest.mark.integration, pytest.mark.three_nodes]

ROWS = 200
DDL_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def session(three_node_cluster: LocalCluster) -> Iterator[Any]:
    """A driver session on the trio, with an RF=3 keyspace."""
    from cassandra.cluster import Cluster

    cluster: Any = Cluster(
        three_node_cluster.contact_points,
        port=three_node_cluster.port,
        max_schema_agreement_wait=120,
    )
    try:
        session = cluster.connect()
        # Three JVMs on two shared cores: schema changes can take far longer than usual.
        session.default_timeout = DDL_TIMEOUT_S
        session.execute(
            "CREATE KEYSPACE IF NOT EXISTS trio_test WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 3}"
        )
        session.execute(
            "CREATE TABLE IF NOT EXISTS trio_test.records (id int PRIMARY KEY, payload text)"
        )
        session.default_timeout = REQUEST_TIMEOUT_S
        yield session
    finally:
        cluster.shutdown()


def _write_and_read(session: Any, first: int) -> list[int]:
    from cassandra import ConsistencyLevel
    from cassandra.query import SimpleStatement

    insert = session.prepare("INSERT INTO trio_test.records (id, payload) VALUES (?, ?)")
    insert.consistency_level = ConsistencyLevel.QUORUM
    for key in range(first, first + ROWS):
        session.execute(insert, (key, f"payload-{key}"))
    select = SimpleStatement(
        "SELECT id, payload FROM trio_test.records WHERE id IN "
        f"({','.join(str(k) for k in range(first, first + ROWS))})",
        consistency_level=ConsistencyLevel.QUORUM,
    )
    rows = list(session.execute(select))
    assert all(row.payload == f"payload-{row.id}" for row in rows)
    return sorted(row.id for row in rows)


def test_the_driver_sees_three_hosts_up(three_node_cluster: LocalCluster, session: Any) -> None:
    hosts = session.cluster.metadata.all_hosts()
    assert sorted(h.address for h in hosts if h.is_up) == three_node_cluster.contact_points


def test_rf3_accepts_quorum_writes_and_reads_them_back(session: Any) -> None:
    assert _write_and_read(session, 0) == list(range(ROWS))


def test_nodetool_shows_three_nodes_up_and_normal(three_node_cluster: LocalCluster) -> None:
    status = three_node_cluster.nodes[0].nodetool(["status", "trio_test"]).stdout
    for address in three_node_cluster.contact_points:
        assert f"UN  {address}" in status


def test_quorum_survives_one_killed_node_which_then_restarts(
    three_node_cluster: LocalCluster, session: Any
) -> None:
    third = three_node_cluster.nodes[2]
    third.kill()
    try:
        assert _write_and_read(session, 10_000) == list(range(10_000, 10_000 + ROWS))
    finally:
        third.start()
        third.wait_ready(300)
    three_node_cluster.wait_ready(300)
