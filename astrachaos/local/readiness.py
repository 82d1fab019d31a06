"""Is a node ready: its log says CQL is listening, and CQL answers (and sees its peers)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

READY_LINE = "Starting listening for CQL clients"
DEFAULT_CREDENTIALS = ("cassandra", "cassandra")
_CONNECT_TIMEOUT_S = 5.0


def log_size(path: Path) -> int:
    """The current size of a log, so that a later scan only reads what a new start wrote."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def log_says_ready(path: Path, offset: int) -> bool:
    """True if the log holds the CQL listening line after offset."""
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            return READY_LINE.encode() in log.read()
    except OSError:
        return False


def log_tail(path: Path, lines: int = 15) -> list[str]:
    """The last lines of a log (empty if absent)."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, 2) - 64 * 1024))
            text = log.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def _driver_cluster(addresses: list[str], port: int, auth: bool, whitelist: bool) -> Any:
    # Imported here: the driver is slow to import and the CLI must stay fast.
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy, WhiteListRoundRobinPolicy

    # Probes fail while a node starts; without a handler those warnings would reach stderr.
    logging.getLogger("cassandra").addHandler(logging.NullHandler())
    policy = WhiteListRoundRobinPolicy(addresses) if whitelist else RoundRobinPolicy()
    return Cluster(
        contact_points=addresses,
        port=port,
        execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(load_balancing_policy=policy)},
        auth_provider=PlainTextAuthProvider(*DEFAULT_CREDENTIALS) if auth else None,
        connect_timeout=_CONNECT_TIMEOUT_S,
        control_connection_timeout=_CONNECT_TIMEOUT_S,
        schema_metadata_enabled=False,
        token_metadata_enabled=False,
    )


def release_version(address: str, port: int, *, auth: bool = False) -> str | None:
    """The release_version one node reports over CQL, or None if it does not answer yet."""
    cluster = _driver_cluster([address], port, auth, whitelist=True)
    try:
        row = cluster.connect().execute("SELECT release_version FROM system.local").one()
        return None if row is None else str(row.release_version)
    except Exception:
        return None
    finally:
        cluster.shutdown()


def nodes_seeing_all(addresses: list[str], port: int, *, auth: bool = False) -> int:
    """How many nodes the driver sees up that each list every other node in system.peers."""
    cluster = _driver_cluster(addresses, port, auth, whitelist=False)
    try:
        session = cluster.connect()
        ready = 0
        for host in cluster.metadata.all_hosts():
            if not host.is_up:
                continue
            rows = session.execute("SELECT peer FROM system.peers", host=host).all()
            ready += len(rows) >= len(addresses) - 1
        return ready
    except Exception:
        return 0
    finally:
        cluster.shutdown()
