"""`verify --capture` of proxy-captured writes by token ranges (fingerprint sums) and partition by
partition: the same classes, each checked by an independent raw read; format 1 captures refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import Cluster
from cassandra.policies import RoundRobinPolicy
from cassandra.query import BatchStatement, BatchType

from astrachaos.capture import verify_capture
from astrachaos.capture.cells import murmur3_token, serialize
from astrachaos.capture.judge import Judge
from astrachaos.capture.reader import CaptureReader
from astrachaos.errors import EnvironmentProblem
from astrachaos.local import LocalCluster
from tests.integration.proxy_harness import running_proxy
from tests.integration.raw import raw_session

KS = "proxy_ranges"
ROWS = 400  # 80 partitions of 5 rows


@pytest.fixture(scope="module")
def capture(local_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """400 prepared inserts through the proxy; then 7 rows deleted and 5 rewritten behind its back."""
    directory = tmp_path_factory.mktemp("ranges") / "capture"
    with raw_session(list(local_cluster.contact_points)) as direct:
        direct.execute(f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication ="
                       " {'class': 'SimpleStrategy', 'replication_factor': 1}")  # fmt: skip
        direct.execute(f"DROP TABLE IF EXISTS {KS}.kv")
        direct.execute(f"CREATE TABLE {KS}.kv (k int, c bigint, v text, n int, PRIMARY KEY (k, c))")
        with running_proxy(["--upstream", "127.0.0.1:9042", "--capture", str(directory)]) as proxy:
            host, port = proxy.listen[0]
            cluster = Cluster([host], port=port, protocol_version=5, load_balancing_policy=RoundRobinPolicy())
            session = cluster.connect()
            insert = session.prepare(f"INSERT INTO {KS}.kv (k, c, v, n) VALUES (?, ?, ?, ?)")
            for first in range(0, ROWS, 5):
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                for i in range(first, first + 5):
                    batch.add(insert, (i // 5, i, f"value {i}", i))
                session.execute(batch)
            cluster.shutdown()
            assert proxy.interrupt() == 130
        deleted = [(i // 5, i) for i in (3, 50, 51, 52, 200, 311, 399)]
        for k, c in deleted:
            direct.execute(f"DELETE FROM {KS}.kv WHERE k = %s AND c = %s", (k, c))
        rewritten = [(i // 5, i) for i in (7, 8, 120, 250, 398)]
        for k, c in rewritten:  # another client, later: the capture's writes were overwritten
            direct.execute(f"INSERT INTO {KS}.kv (k, c, v, n) VALUES (%s, %s, 'other', 0)", (k, c))
        yield directory, direct, set(deleted), set(rewritten)


@pytest.mark.parametrize("scan_from", [1, 1_000_000], ids=["token-ranges", "per-partition"])
def test_ranges_and_partitions_give_the_classes_a_raw_read_gives(
    capture: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scan_from: int
) -> None:
    directory, direct, deleted, rewritten = capture
    monkeypatch.setattr("astrachaos.capture.verify.SCAN_FROM_KEYS", scan_from)
    judged: list[bytes] = []
    classify = Judge.classify

    def counted(self: Judge, key: bytes, *args: Any) -> None:
        judged.append(key)
        classify(self, key, *args)

    monkeypatch.setattr(Judge, "classify", counted)
    result = verify_capture(directory, direct, None, tmp_path / "out", settle_s=0.1)
    if scan_from == 1:  # ranges without a difference were judged by their sums alone
        assert len(deleted) + len(rewritten) <= len(judged) < ROWS / 2
    else:
        assert len(judged) == ROWS
    counts = result.counts
    assert counts["captured"] == ROWS
    assert counts["lost"] == len(deleted)
    assert counts["overwritten"] == len(rewritten)
    assert counts["ok"] == ROWS - len(deleted) - len(rewritten)
    assert counts["told_success"] == ROWS and counts["present"] == ROWS - len(deleted)
    assert result.unread == ()
    by_class = {(r.key["k"], r.key["c"]): r.write_class.value for r in result.records}
    assert by_class == {**{k: "lost" for k in deleted}, **{k: "overwritten" for k in rewritten}}
    for (k, c), write_class in by_class.items():  # independent raw reads
        row = direct.execute(f"SELECT v FROM {KS}.kv WHERE k = %s AND c = %s", (k, c)).one()
        assert (row is None) if write_class == "lost" else (row.v == "other")
    assert int(result.exit_code) == 1


def test_the_capture_holds_cassandra_s_tokens(capture: Any) -> None:
    directory, direct, _, _ = capture
    with CaptureReader(directory) as reader:
        tokens = dict(reader.conn.execute("SELECT DISTINCT substr(key, 1, 4), token FROM writes").fetchall())
    for cell, token in list(tokens.items())[:10]:
        k = int.from_bytes(cell, "big", signed=True)
        (expected,) = direct.execute(f"SELECT token(k) FROM {KS}.kv WHERE k = %s LIMIT 1", (k,)).one()
        assert token == expected == murmur3_token([serialize(k, "int")])


def test_a_format_1_capture_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    with sqlite3.connect(tmp_path / "old" / "capture.sqlite") as db:
        db.execute("CREATE TABLE writes (id INTEGER PRIMARY KEY, key TEXT)")
        db.execute("PRAGMA user_version = 1")
    with pytest.raises(EnvironmentProblem, match=r"older astrachaos \(capture format 1"):
        CaptureReader(tmp_path / "old")
