"""Fixtures giving integration tests a real Apache Cassandra: the default node, and a trio.

Both yield a LocalCluster: `contact_points` and `port` for the driver, `nodes` for node faults.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator

import pytest

from astrachaos.config.settings import load_profile
from astrachaos.local import LocalCluster
from astrachaos.local.cluster import requested_spec
from astrachaos.local.layout import clusters_root
from astrachaos.run.autostart import spec_for_profile

TRIO_NAME = "local3"


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
def local3_session() -> Iterator[None]:
    """This session owns the `local3` cluster: absent when it starts, wiped at the end.

    Whoever needs it first starts it: the `three_node_cluster` fixture, or `astrachaos run` of a
    scenario with the `local3` profile (autostart). Both derive the cluster from that profile, so
    one finds the other's cluster up and compatible.
    """
    # One test session at a time owns it: a second one waits here instead of wiping it mid-test.
    clusters_root().mkdir(parents=True, exist_ok=True)
    with open(clusters_root() / f".{TRIO_NAME}.session.lock", "w") as owner:
        fcntl.flock(owner, fcntl.LOCK_EX)
        _wipe_if_present(TRIO_NAME)
        try:
            yield
        finally:
            _wipe_if_present(TRIO_NAME)


@pytest.fixture(scope="session")
def three_node_cluster(local3_session: None) -> LocalCluster:
    """The three-node cluster `local3` (the `local3` profile) on 127.0.0.11-13, up."""
    cluster = LocalCluster(spec_for_profile(load_profile(TRIO_NAME).profile))
    cluster.up()
    return cluster
