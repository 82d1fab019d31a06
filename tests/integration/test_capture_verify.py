"""Capture verification against the real node: every class, each checked by an independent read."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from astrachaos.capture import (
    CapturedWrite,
    CaptureLedger,
    Claims,
    Told,
    Unverifiable,
    WriteClass,
    WriteKind,
    value_digest,
    verify_capture,
)
from astrachaos.local import LocalCluster
from astrachaos.reconcile.keyfile import KeyFormat, KeySpec
from tests.integration.raw import raw_session

KS = "proxy_capture"
TABLE = "events"


@pytest.fixture(scope="module")
def session(local_cluster: LocalCluster) -> Any:
    with raw_session(list(local_cluster.contact_points)) as s:
        s.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication ="
            " {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        s.execute(f"DROP TABLE IF EXISTS {KS}.{TABLE}")
        s.execute(
            f"CREATE TABLE {KS}.{TABLE} (id uuid, seq int, at timestamp, body text, PRIMARY KEY (id, seq))"
        )
        yield s


def _write(
    ledger: CaptureLedger,
    key: dict[str, Any],
    body: str | None,
    told: Told,
    kind: WriteKind = WriteKind.INSERT,
) -> int:
    values = {} if kind is WriteKind.DELETE else {"body": body}
    write_id = ledger.sent(
        CapturedWrite(
            keyspace=KS, table=TABLE, key=key, key_types={"id": "uuid", "seq": "int"},
            value_digest=None if kind is WriteKind.DELETE else value_digest(values), kind=kind,
            connection="test#1", stream=1, sent_at=time.time(), value_columns=tuple(values),
        )
    )  # fmt: skip
    if told is not Told.NO_ANSWER:
        ledger.answered(write_id, told, "WriteTimeout" if told is Told.ERROR else None, None)
    time.sleep(0.002)  # distinct sent_at order
    return write_id


@pytest.mark.parametrize("whole_table_scan", [False, True], ids=["per-partition", "scan"])
def test_every_class_agrees_with_a_raw_read(
    session: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_table_scan: bool
) -> None:
    if whole_table_scan:
        monkeypatch.setattr("astrachaos.capture.verify.SCAN_FROM_KEYS", 1)
    session.execute(f"TRUNCATE {KS}.{TABLE}")
    insert = session.prepare(f"INSERT INTO {KS}.{TABLE} (id, seq, body) VALUES (?, ?, ?)")
    names = ["ok", "lost", "recovered", "failed", "indeterminate", "overwritten", "deleted", "older"]
    keys = {name: {"id": uuid.uuid4(), "seq": n} for n, name in enumerate(names)}
    capture = tmp_path / "capture"
    with CaptureLedger(capture) as ledger:
        _write(ledger, keys["ok"], "a", Told.RESULT)
        session.execute(insert, (keys["ok"]["id"], keys["ok"]["seq"], "a"))
        _write(ledger, keys["lost"], "b", Told.RESULT)  # told success, never reached the table
        _write(ledger, keys["recovered"], "c", Told.ERROR)
        session.execute(insert, (keys["recovered"]["id"], keys["recovered"]["seq"], "c"))
        _write(ledger, keys["failed"], "d", Told.ERROR)
        _write(ledger, keys["indeterminate"], "e", Told.NO_ANSWER)
        _write(ledger, keys["overwritten"], "f1", Told.RESULT)
        _write(ledger, keys["overwritten"], "f2", Told.RESULT)
        session.execute(insert, (keys["overwritten"]["id"], keys["overwritten"]["seq"], "f2"))
        _write(ledger, keys["deleted"], "g", Told.RESULT)
        _write(ledger, keys["deleted"], None, Told.RESULT, WriteKind.DELETE)
        _write(ledger, keys["older"], "h1", Told.RESULT)
        session.execute(insert, (keys["older"]["id"], keys["older"]["seq"], "h1"))
        _write(ledger, keys["older"], "h2", Told.RESULT)  # acknowledged, table holds the older value
        ledger.unverifiable(
            Unverifiable("key values are literals in the CQL text", KS, TABLE, "INSERT ... VALUES (1, 'x')")
        )
    never = {"id": uuid.uuid4(), "seq": 99}
    log = tmp_path / "app.log"
    lines = [
        {"level": "info", "msg": "stored", "id": str(k["id"]), "seq": k["seq"]}
        for k in (keys["ok"], keys["lost"], never)
    ]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    claims = Claims(log, KeySpec(("id", "seq"), KeyFormat.JSONL, match={"msg": "stored"}), KS, TABLE)
    out = tmp_path / "out"
    result = verify_capture(capture, session, claims, out, settle_s=0.1)

    by_key = {(r.key["id"], r.key["seq"], r.write_class) for r in result.records}
    expected = {
        "lost": WriteClass.LOST, "recovered": WriteClass.RECOVERED, "failed": WriteClass.FAILED,
        "indeterminate": WriteClass.INDETERMINATE, "overwritten": WriteClass.OVERWRITTEN,
        "deleted": WriteClass.DELETED, "older": WriteClass.LOST,
    }  # fmt: skip
    for name, write_class in expected.items():
        key = keys[name]
        assert (str(key["id"]), key["seq"], write_class) in by_key, name
        # independent read: present exactly when the class says the value is there
        row = session.execute(
            f"SELECT body FROM {KS}.{TABLE} WHERE id = %s AND seq = %s", (key["id"], key["seq"])
        ).one()
        if write_class in (WriteClass.RECOVERED, WriteClass.OVERWRITTEN):
            assert row is not None
        if write_class in (WriteClass.FAILED, WriteClass.INDETERMINATE, WriteClass.DELETED) or name == "lost":
            assert row is None
    assert (str(never["id"]), 99, WriteClass.NEVER_SENT) in by_key
    assert result.counts["ok"] == 4  # "ok", "f2", the DELETE, and "h1" (the value the table holds)
    assert result.counts["lost"] == 2
    assert result.counts["unverifiable"] == 1
    assert result.counts["silent"] == 2  # "lost" and the never-sent key were logged as stored
    assert result.counts["never_sent"] == 1
    assert int(result.exit_code) == 1
    written = json.loads((out / "result.json").read_text())
    assert written["kind"] == "capture" and written["counts"] == result.counts


def test_a_clean_capture_exits_zero(session: Any, tmp_path: Path) -> None:
    key = {"id": uuid.uuid4(), "seq": 1}
    with CaptureLedger(tmp_path / "c") as ledger:
        _write(ledger, key, "x", Told.RESULT)
    session.execute(f"INSERT INTO {KS}.{TABLE} (id, seq, body) VALUES (%s, %s, %s)", (key["id"], 1, "x"))
    result = verify_capture(tmp_path / "c", session, settle_s=0.1)
    assert result.counts["ok"] == 1 and result.counts["lost"] == 0
    assert int(result.exit_code) == 0
