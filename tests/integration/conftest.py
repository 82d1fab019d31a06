"""Fixtures giving integration tests a real Apache Cassandra: the default node, and a trio.

Both yield a LocalCluster: `contact_points` and `port` for the driver, `nodes` for node faults.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator

import pytest

from astrachaos.local import ClusterSpec, LocalCluster
from astrachaos.local.cluster import requested_spec
from astrachaos.local.layout import clusters_root

TRIO = ClusterSpec(name="local3", nodes=3, first_address="127.0.0.11", heap_mb=512)


def _wipe_if_present(name: str) -> None:
    # A cluster left over by an interrupted run: stop and delete it.
    if LocalCluster.saved_spec(name) is not None:
        LocalCluster.load(name).down(wipe=True)


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[LocalCluster]:
    """The default one-node cluster on 127.0.0.1, reused if it runs and then left running."""
    cluster = LocalCluster(requested_spec("default"))
    # "Not up" is not "not running": a node another session paused for a moment must not make
    # this session believe it started the node, and stop it at the end.
    started_here = all(node.pid() is None for node in cluster.nodes)
    if started_here:
        cluster.up()
    yield cluster
    # Other sessions may be using it: stop it only if this session started it.
    if started_here and os.environ.get("ASTRACHAOS_KEEP_CLUSTER") != "1":
        cluster.down()


@pytest.fixture(scope="session")
def three_node_cluster() -> Iterator[LocalCluster]:
    """A fresh three-node cluster `local3` (the `local3` profile) on 127.0.0.11-13; wiped after."""
    # One test session at a time owns it: a second one waits here instead of wiping it mid-test.
    clusters_root().mkdir(parents=True, exist_ok=True)
    with open(clusters_root() / f".{TRIO.name}.session.lock", "w") as owner:
        fcntl.flock(owner, fcntl.LOCK_EX)
        _wipe_if_present(TRIO.name)
        cluster = LocalCluster(TRIO)
        try:
            cluster.up()
            yield cluster
        finally:
            cluster.down(wipe=True)
