"""The Python driver through `astrachaos proxy`, protocol v4 and v5, with and without compression:
what is captured, what is unverifiable and why, peers seen by the driver, nothing left unread,
and a kill -9 of the proxy losing no answer."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import Cluster
from cassandra.policies import RoundRobinPolicy
from cassandra.query import BatchStatement

from astrachaos.capture import CaptureReader
from astrachaos.local import LocalCluster
from astrachaos.standalone.capture import schema_of
from astrachaos.standalone.taped import complete_capture
from tests.integration.proxy_harness import astrachaos, listening, running_proxy
from tests.integration.raw import raw_session

KS = "proxy_python"
ACKNOWLEDGED = "SELECT w.key FROM writes w JOIN answers a ON a.write_id = w.id WHERE a.told = 'result'"


@pytest.fixture(scope="module")
def direct(local_cluster: LocalCluster) -> Any:
    with raw_session(list(local_cluster.contact_points)) as s:
        s.execute(f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication ="
                  " {'class': 'SimpleStrategy', 'replication_factor': 1}")  # fmt: skip
        s.execute(f"CREATE TABLE IF NOT EXISTS {KS}.kv (k int, c text, v text, PRIMARY KEY (k, c))")
        s.execute(f"TRUNCATE {KS}.kv")
        yield s


@pytest.mark.parametrize("protocol", [4, 5])
def test_prepared_batches_updates_deletes_are_captured_literals_are_unverifiable(
    direct: Any, tmp_path: Path, protocol: int
) -> None:
    capture, out = tmp_path / "capture", tmp_path / "out"
    base = protocol * 1000
    with running_proxy(["--upstream", "127.0.0.1:9042", "--capture", str(capture)]) as proxy:
        host, port = proxy.listen[0]
        cluster = Cluster(
            [host], port=port, protocol_version=protocol, load_balancing_policy=RoundRobinPolicy(),
            compression=False,
        )  # fmt: skip
        session = cluster.connect()
        assert {h.endpoint.address for h in cluster.metadata.all_hosts()} == {host}
        insert = session.prepare(f"INSERT INTO {KS}.kv (k, c, v) VALUES (?, ?, ?)")
        for i in range(20):
            session.execute(insert, (base + i, "a", f"v{i}"))
        batch = BatchStatement()
        for i in range(20, 30):
            batch.add(insert, (base + i, "a", f"v{i}"))
        session.execute(batch)
        session.execute(
            session.prepare(f"UPDATE {KS}.kv SET v = ? WHERE k = ? AND c = ?"), ("new", base, "a")
        )
        session.execute(session.prepare(f"DELETE FROM {KS}.kv WHERE k = ? AND c = ?"), (base + 1, "a"))
        session.execute(f"INSERT INTO {KS}.kv (k, c, v) VALUES (%s, %s, %s)", (base + 99, "lit", "x"))
        session.execute("SELECT now() FROM system.local")  # reads are not captured
        cluster.shutdown()
        assert proxy.interrupt() == 130
    verify = subprocess.run([*astrachaos(), "verify", "--capture", str(capture), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    result = json.loads((out / "result.json").read_text())
    counts = result["counts"]
    assert counts["captured"] == 20 + 10 + 1 + 1 + 1  # inserts, batch statements, update, delete, literal
    assert counts["unverifiable"] == 1
    assert list(result["unverifiable_reasons"]) == [
        "key values are literals in the CQL text, not bound values"
    ]
    assert counts["lost"] == 0
    # the first insert was then updated, the second deleted: each explained, checked by a raw read
    by_key = {(r["key"]["k"], r["class"]) for r in result["records"]}
    assert (base, "overwritten") in by_key and (base + 1, "deleted") in by_key
    assert direct.execute(f"SELECT v FROM {KS}.kv WHERE k = %s AND c = 'a'", (base,)).one().v == "new"
    assert direct.execute(f"SELECT v FROM {KS}.kv WHERE k = %s AND c = 'a'", (base + 1,)).one() is None


OVERLOAD_ALL = {"label": "overload-all", "name": "protocol",
                "params": {"mode": "error", "error": "overloaded", "keyspace": KS}}  # fmt: skip


@pytest.mark.parametrize(("protocol", "compression"), [(4, "lz4"), (4, "snappy"), (5, "lz4")])
def test_a_compressed_client_is_read_faulted_and_captured_with_nothing_unread(
    direct: Any, tmp_path: Path, protocol: int, compression: str
) -> None:
    """lz4/snappy bodies (v4) and lz4 segments (v5) are inflated: faults and capture see every write."""
    capture, out = tmp_path / "capture", tmp_path / "out"
    base = 100_000 + protocol * 10_000 + (0 if compression == "lz4" else 5_000)
    value = "compressible " * 40  # long enough that the driver's lz4 shrinks the frames
    with running_proxy(["--upstream", "127.0.0.1:9042", "--capture", str(capture)]) as proxy:
        host, port = proxy.listen[0]
        cluster = Cluster([host], port=port, protocol_version=protocol, compression=compression,
                          load_balancing_policy=RoundRobinPolicy())  # fmt: skip
        session = cluster.connect()
        insert = session.prepare(f"INSERT INTO {KS}.kv (k, c, v) VALUES (?, ?, ?)")
        for i in range(20):
            session.execute(insert, (base + i, "z", value))
        assert proxy.ctl("add", json.dumps(OVERLOAD_ALL)).returncode == 0
        refused = 0
        for i in range(20, 25):
            try:
                session.execute(insert, (base + i, "z", value))
            except Exception:  # Overloaded, then no host left to retry on
                refused += 1
        assert proxy.ctl("remove", "overload-all").returncode == 0
        for i in range(25, 30):
            session.execute(insert, (base + i, "z", value))
        connection = next(iter(session.get_pools())).borrow_connection(timeout=5)[0]
        negotiated = connection._compression_type if hasattr(connection, "_compression_type") else None
        stats = proxy.replayed_stats()
        cluster.shutdown()
        assert proxy.interrupt() == 130
    assert refused == 5
    assert negotiated == compression
    assert stats["compressed_connections"].get(compression, 0) >= 1
    assert stats["not_followed"] == {"connections": 0, "refused": 0, "frames": 0, "requests": 0}
    assert stats["injected"] == {"overloaded": 5}
    verify = subprocess.run([*astrachaos(), "verify", "--capture", str(capture), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    result = json.loads((out / "result.json").read_text())
    assert (result["counts"]["captured"], result["counts"]["ok"], result["counts"]["failed"]) == (30, 25, 5)
    assert result["proxy"]["not_followed"] == stats["not_followed"]
    failed = {r["key"]["k"] for r in result["records"] if r["class"] == "failed"}
    assert failed == {base + i for i in range(20, 25)}
    present = {row.k for row in direct.execute(f"SELECT k, c FROM {KS}.kv") if row.c == "z"}
    assert {base + i for i in range(30)} & present == {base + i for i in [*range(20), *range(25, 30)]}


def test_a_table_created_mid_run_is_looked_up_and_its_writes_keyed(direct: Any, tmp_path: Path) -> None:
    capture, out = tmp_path / "capture", tmp_path / "out"
    table = f"mid_run_{uuid.uuid4().hex[:8]}"
    with running_proxy(["--upstream", "127.0.0.1:9042", "--capture", str(capture)]) as proxy:
        host, port = proxy.listen[0]
        cluster = Cluster([host], port=port, load_balancing_policy=RoundRobinPolicy(), compression=False)
        session = cluster.connect()
        session.execute(f"CREATE TABLE {KS}.{table} (k int PRIMARY KEY, v text)")  # after the proxy started
        session.execute(session.prepare(f"INSERT INTO {KS}.{table} (k, v) VALUES (?, ?)"), (1, "a"))
        session.execute(session.prepare(f"UPDATE {KS}.{table} SET v = ? WHERE k = ?"), ("b", 2))
        stats = proxy.replayed_stats()
        cluster.shutdown()
        assert proxy.interrupt() == 130
    assert stats["capture"].get("schema_lookups_waited", 0) >= 1
    verify = subprocess.run([*astrachaos(), "verify", "--capture", str(capture), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    result = json.loads((out / "result.json").read_text())
    counts, reasons = result["counts"], result["unverifiable_reasons"]
    assert (counts["captured"], counts["ok"], counts["unverifiable"]) == (2, 2, 0), reasons


def test_kill_9_of_the_proxy_loses_no_answer_a_client_got(direct: Any, tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    acknowledged: list[int] = []
    with running_proxy(["--upstream", "127.0.0.1:9042", "--capture", str(capture)]) as proxy:
        host, port = proxy.listen[0]
        cluster = Cluster([host], port=port, load_balancing_policy=RoundRobinPolicy(), compression=False)
        session = cluster.connect()
        insert = session.prepare(f"INSERT INTO {KS}.kv (k, c, v) VALUES (?, ?, ?)")
        key = 50_000
        try:
            while True:
                session.execute(insert, (key, "kill", str(uuid.uuid4())))
                acknowledged.append(key)
                key += 1
                if len(acknowledged) == 300:
                    proxy.process.send_signal(signal.SIGKILL)
        except Exception:  # the proxy is gone: the next write fails
            pass
        finally:
            cluster.shutdown()
        proxy.process.wait(timeout=30)
    assert len(acknowledged) >= 300
    # What `astrachaos verify` does first: the tape the killed proxy left is replayed in place.
    assert (capture / "capture.tape").is_file()
    with complete_capture(capture, schema_of(direct)) as completed:
        assert completed == capture and not (capture / "capture.tape").exists()
    with CaptureReader(capture):  # completes the capture from the ledger's journal
        pass
    with sqlite3.connect(capture / "capture.sqlite") as db:
        # capture format 2: the key is the serialized cells, int k (4 bytes) then text c
        told = {int.from_bytes(k[:4], "big", signed=True) for (k,) in db.execute(ACKNOWLEDGED)}
    assert set(acknowledged) <= told, (
        f"{len(set(acknowledged) - told)} acknowledged writes missing after kill -9"
    )
    assert not listening(host, port)
