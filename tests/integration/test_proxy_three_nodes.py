"""`astrachaos proxy` in front of a three-node cluster: no client connection escapes it, and a node
killed mid-run loses no acknowledged write (the Java driver 4.x writing, raw reads checking)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cassandra import ConsistencyLevel
from cassandra.cluster import Cluster
from cassandra.query import SimpleStatement

from astrachaos.local import LocalCluster
from tests.integration.proxy_harness import (
    astrachaos,
    java_client,
    run_java_uploader,
    running_proxy,
    tcp_peers,
)

pytestmark = [pytest.mark.integration, pytest.mark.three_nodes, pytest.mark.timeout(2400)]
KS, TABLE = "proxy_trio", "uploads"
_ACKNOWLEDGED = "SELECT w.key FROM writes w JOIN answers a ON a.write_id = w.id WHERE a.told = 'result'"


def _ddl(session: Any, statement: str) -> None:
    """Schema changes on three JVMs sharing two cores can time out once: try again (idempotent)."""
    for attempt in range(5):
        try:
            session.execute(statement)
            return
        except Exception:
            if attempt == 4:
                raise
            time.sleep(5)


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_every_connection_goes_through_the_proxy_and_a_killed_node_loses_nothing_acknowledged(
    three_node_cluster: LocalCluster, tmp_path: Path
) -> None:
    classpath = java_client()
    nodes = list(three_node_cluster.contact_points)
    port = int(three_node_cluster.port)
    direct = Cluster(nodes, port=port, max_schema_agreement_wait=120)
    session = direct.connect()
    session.default_timeout = 120
    _ddl(session, f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = "
                  "{'class': 'SimpleStrategy', 'replication_factor': 3}")  # fmt: skip
    _ddl(
        session,
        f"CREATE TABLE IF NOT EXISTS {KS}.{TABLE} (id uuid, seq int, body text, PRIMARY KEY (id, seq))",
    )
    capture, app_log, out = tmp_path / "capture", tmp_path / "app.log", tmp_path / "out"
    upstreams = [a for n in nodes for a in ("--upstream", f"{n}:{port}")]
    third = three_node_cluster.nodes[2]
    try:
        with running_proxy([*upstreams, "--capture", str(capture)], listen_host="127.0.0.21") as proxy:
            listeners = set(proxy.listen)
            assert len(listeners) == 3
            host, listen_port = proxy.listen[0]
            uploader = run_java_uploader(
                classpath, host, listen_port, KS, TABLE, 1500, 5, app_log, linger_s=3
            )
            seen: set[tuple[str, int]] = set()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and _lines(app_log) < 300 and uploader.poll() is None:
                seen |= tcp_peers(uploader.pid)
                time.sleep(0.05)
            seen |= tcp_peers(uploader.pid)
            assert seen, "the client has no connection"
            assert seen <= listeners, f"the client reached {seen - listeners} around the proxy"
            assert seen == listeners, "the driver found every node, each through its proxy listener"
            third.kill()  # mid-run
            output, _ = uploader.communicate(timeout=300)
            assert uploader.returncode == 0, output
            stats = json.loads(proxy.ctl("stats").stdout)
            assert proxy.interrupt() == 130
        assert stats["topology"].get("peer_rows_dropped", 0) == 0, stats
        verify = subprocess.run(
            [*astrachaos(), "verify", "--capture", str(capture), "--out", str(out), "--profile", "local3",
             "--app-log", str(app_log), "--match", "msg=stored", "--table", f"{KS}.{TABLE}",
             "--key", "id,seq"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        result = json.loads((out / "result.json").read_text())
        assert result["counts"]["lost"] == 0, verify.stdout
        acknowledged = set()
        with sqlite3.connect(capture / "capture.sqlite") as db:
            for (key,) in db.execute(_ACKNOWLEDGED):  # format 2: uuid id (16 bytes), then int seq
                seq = int.from_bytes(key[16:], "big", signed=True)
                acknowledged.add((str(uuid.UUID(bytes=key[:16])), seq))
        assert len(acknowledged) > 500
        read = SimpleStatement(f"SELECT id FROM {KS}.{TABLE} WHERE id = %s AND seq = %s",
                               consistency_level=ConsistencyLevel.QUORUM)  # fmt: skip
        absent = [k for k in acknowledged if session.execute(read, (uuid.UUID(k[0]), k[1])).one() is None]
        assert absent == [], f"{len(absent)} acknowledged writes absent after a node was killed"
    finally:
        direct.shutdown()
        third.start()  # no-op when it runs
        third.wait_ready(300)
