"""Session fixture `astra`: a real auth-enabled node behind the Astra stand-in, and its secrets.

The node is our own cluster `astra` on 127.0.0.31 (never the shared `default`), started with
PasswordAuthenticator; an admin (cassandra/cassandra) creates the role `token` whose password is
the application token, and the keyspace, as an Astra user does in the console.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from astrachaos.local import ClusterSpec, LocalCluster
from tests.astra_standin import AstraStandin

ASTRA_NODE = ClusterSpec(name="astra", nodes=1, first_address="127.0.0.31", auth=True)
KEYSPACE = "standin_ks"
LOCAL_DC = "datacenter1"  # SimpleSnitch's


@dataclass(frozen=True)
class AstraTarget:
    """The stand-in, the token it accepts and a config dir whose `astra` profile targets it."""

    standin: AstraStandin
    token: str
    config_dir: Path
    node_address: str

    def env(self, bundle: Path | None = None, token: str | None = None) -> dict[str, str]:
        """The variables a user sets: token, bundle path and config dir."""
        return {
            "ASTRA_DB_APPLICATION_TOKEN": self.token if token is None else token,
            "ASTRACHAOS_SECURE_CONNECT_BUNDLE": str(bundle or self.standin.bundle()),
            "ASTRACHAOS_CONFIG_DIR": str(self.config_dir),
        }


def admin_session(address: str) -> tuple[Any, Any]:
    """A driver cluster and session as the default superuser, straight to the node (no proxy)."""
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import Cluster

    cluster = Cluster([address], auth_provider=PlainTextAuthProvider("cassandra", "cassandra"))
    return cluster, cluster.connect()


def _prepare_database(address: str, token: str) -> str:
    """Create the token role and the keyspace; return the node's host_id."""
    cluster, session = admin_session(address)
    try:
        # `token` is a CQL keyword: the role name must be quoted. A reused node has the role
        # with an older session's token; a password change right after creation is refused.
        exists = session.execute("SELECT role FROM system_auth.roles WHERE role = 'token'").one()
        verb = "ALTER ROLE \"token\" WITH" if exists else "CREATE ROLE \"token\" WITH LOGIN = true AND"
        session.execute(f"{verb} PASSWORD = '{token}'")
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
            f"{{'class': 'NetworkTopologyStrategy', '{LOCAL_DC}': 1}}"
        )
        return str(session.execute("SELECT host_id FROM system.local").one().host_id)
    finally:
        cluster.shutdown()


def _node_cluster() -> LocalCluster:
    saved = LocalCluster.saved_spec(ASTRA_NODE.name)
    if saved is not None and saved != ASTRA_NODE:
        LocalCluster.load(ASTRA_NODE.name).down(wipe=True)  # left over with other settings
    return LocalCluster(ASTRA_NODE)


@pytest.fixture(scope="session")
def astra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AstraTarget]:
    """Node up, role and keyspace created, stand-in serving; all stopped at the end."""
    node = _node_cluster()
    node.up()
    try:
        address = node.contact_points[0]
        token = "AstraCS:standin:" + secrets.token_hex(24)
        host_id = _prepare_database(address, token)
        workdir = tmp_path_factory.mktemp("astra-standin")
        standin = AstraStandin(workdir, {host_id: (address, node.port)}, KEYSPACE, LOCAL_DC)
        standin.start()
        config_dir = workdir / "configs"
        config_dir.mkdir()
        (config_dir / "astra.yaml").write_text(f"kind: astra\nkeyspace: {KEYSPACE}\n")
        try:
            yield AstraTarget(standin, token, config_dir, address)
        finally:
            standin.stop()
    finally:
        if os.environ.get("ASTRACHAOS_KEEP_CLUSTER") != "1":
            node.down(wipe=True)
