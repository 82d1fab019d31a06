"""Clients astrachaos did not write, through `astrachaos proxy`: every class agrees with a raw read.

The DataStax Java driver 4.x (the seed's uploader pattern, compiled here) and cqlsh `COPY FROM`
write through the proxy to the local node under two protocol faults: 20 % of writes forwarded
and answered with a WriteTimeout, and 10 % refused with Overloaded (added and removed through
the control API while the client runs). `astrachaos verify --capture` then classifies every
write, and each class is checked against an independent read of that key at ALL.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from astrachaos.local import LocalCluster
from tests.integration.proxy_harness import (
    astrachaos,
    java_client,
    listening,
    node_client,
    run_java_uploader,
    run_node_uploader,
    running_proxy,
)
from tests.integration.raw import raw_session

KS = "proxy_clients"
TIMEOUT_FAULT = {
    "label": "timeout-20",
    "name": "protocol",
    "params": {"mode": "forward-then-timeout", "error": "write_timeout", "keyspace": KS},
    "schedule": {"probability": 0.2},
}
OVERLOADED_FAULT = {
    "label": "overloaded-10",
    "name": "protocol",
    "params": {"mode": "error", "error": "overloaded", "keyspace": KS},
    "schedule": {"probability": 0.1},
}


@pytest.fixture(scope="module")
def session(local_cluster: LocalCluster) -> Any:
    with raw_session(list(local_cluster.contact_points)) as s:
        s.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication ="
            " {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        yield s


def _table(session: Any, name: str) -> str:
    session.execute(f"DROP TABLE IF EXISTS {KS}.{name}")
    session.execute(f"CREATE TABLE {KS}.{name} (id uuid, seq int, body text, PRIMARY KEY (id, seq))")
    return name


def _raw_present(session: Any, table: str, keys: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which keys the table holds, read one by one at ALL with the bare driver."""
    statement = SimpleStatement(
        f"SELECT id FROM {KS}.{table} WHERE id = %s AND seq = %s", consistency_level=ConsistencyLevel.ALL
    )
    return {k for k in keys if session.execute(statement, (uuid.UUID(k[0]), k[1])).one() is not None}


def _captured_keys(capture: Path) -> set[tuple[str, int]]:
    """Every key the capture holds, read with sqlite3 alone (format 2: uuid id, 16 bytes, then int seq)."""
    with sqlite3.connect(capture / "capture.sqlite") as db:
        return {
            (str(uuid.UUID(bytes=k[:16])), int.from_bytes(k[16:], "big", signed=True))
            for (k,) in db.execute("SELECT key FROM writes")
        }


def _logged_keys(app_log: Path) -> set[tuple[str, int]]:
    lines = [json.loads(line) for line in app_log.read_text().splitlines() if line.strip()]
    return {(e["id"], e["seq"]) for e in lines if e.get("msg") == "stored"}


def _verify(capture: Path, out: Path, app_log: Path, table: str) -> tuple[int, dict[str, Any]]:
    verify = subprocess.run(
        [*astrachaos(), "verify", "--capture", str(capture), "--out", str(out), "--app-log", str(app_log),
         "--match", "msg=stored", "--table", f"{KS}.{table}", "--key", "id,seq", "--settle-s", "0.5"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert verify.returncode in (0, 1), verify.stdout + verify.stderr
    return verify.returncode, json.loads((out / "result.json").read_text())


def _check_against_raw_reads(session: Any, table: str, result: dict[str, Any], logged: set[tuple[str, int]],
                             captured: set[tuple[str, int]]) -> set[tuple[str, int]]:  # fmt: skip
    """Every class agrees with an independent read of its key; returns the keys present."""
    present = _raw_present(session, table, logged | captured)
    records = [r for r in result["records"] if r["table"] == table]
    for record in records:
        key = (record["key"]["id"], record["key"]["seq"])
        if record["class"] in ("recovered", "overwritten"):
            assert key in present, record
        elif record["class"] in ("failed", "indeterminate", "deleted", "lost"):
            assert key not in present, record
        elif record["class"] == "never_sent":
            assert key not in captured, record
        if record["silent"]:
            assert key in logged and key not in present, record
    not_ok = {(r["key"]["id"], r["key"]["seq"]) for r in records}
    assert captured - not_ok <= present, "a write verified ok is absent"
    silent = {k for k in logged if k not in present}
    assert result["counts"]["silent"] == len(silent)
    assert {(r["key"]["id"], r["key"]["seq"]) for r in records if r["silent"]} == silent
    never_sent = {(r["key"]["id"], r["key"]["seq"]) for r in records if r["class"] == "never_sent"}
    assert never_sent == logged - captured
    assert result["counts"]["lost"] == 0, "no acknowledged write may be lost on a healthy node"
    return present


def _wait_for_lines(path: Path, count: int, client: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and client.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the client did not log {count} lines in time (exit {client.poll()})")


def _wait_until_injected(proxy: Any, label: str, count: int, client: subprocess.Popen[str]) -> None:
    """Until the fault `label` has answered `count` requests (a condition, not a duration)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and client.poll() is None:
        with urllib.request.urlopen(f"http://{proxy.api}/faults", timeout=30) as answer:
            faults = {f["label"]: f for f in json.loads(answer.read())}
        if faults[label]["injected"] >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{label} did not answer {count} requests during the run (exit {client.poll()})")


def _capturing(tmp_path: Path, *faults: dict[str, Any]) -> list[str]:
    """Proxy arguments: the local node upstream, `faults` from a file, capture in tmp_path/capture."""
    path = tmp_path / "faults.yaml"
    path.write_text(yaml.safe_dump({"injectors": list(faults)}))
    return ["--upstream", "127.0.0.1:9042", "--faults", str(path), "--capture", str(tmp_path / "capture")]


def test_java_uploader_through_the_proxy_every_class_matches_a_raw_read(session: Any, tmp_path: Path) -> None:
    classpath = java_client()
    table = _table(session, "java_uploads")
    capture, app_log, out = tmp_path / "capture", tmp_path / "app.log", tmp_path / "out"
    with running_proxy(_capturing(tmp_path, TIMEOUT_FAULT)) as proxy:
        host, port = proxy.listen[0]
        uploader = run_java_uploader(classpath, host, port, KS, table, 600, 4, app_log, linger_s=4)
        _wait_for_lines(app_log, 150, uploader)  # mid-run: refuse 10 % with Overloaded, via the API
        # straight over HTTP: `ctl add` starts a Python process, which may outlast the run's middle
        request = urllib.request.Request(f"http://{proxy.api}/faults", json.dumps(OVERLOADED_FAULT).encode())
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 201
        _wait_until_injected(proxy, "overloaded-10", 3, uploader)
        removed = proxy.ctl("remove", "overloaded-10")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        listed = json.loads(proxy.ctl("list").stdout)
        assert [f["label"] for f in listed] == ["timeout-20"]
        output, _ = uploader.communicate(timeout=180)
        assert uploader.returncode == 0, output
        stats = proxy.replayed_stats()
        assert proxy.interrupt() == 130, "".join(proxy.output)
        for host_port in proxy.listen:
            assert not listening(*host_port), f"{host_port} still listening after Ctrl-C"
        assert not listening("127.0.0.1", int(proxy.api.rsplit(":", 1)[1]))
    assert stats["injected"].get("overloaded", 0) > 0 and stats["injected"].get("write_timeout", 0) > 0
    code, result = _verify(capture, out, app_log, table)
    logged, captured = _logged_keys(app_log), _captured_keys(capture)
    assert len(logged) == 600
    _check_against_raw_reads(session, table, result, logged, captured)
    classes = result["counts"]
    assert classes["recovered"] + classes["overwritten"] > 0  # told WriteTimeout, applied anyway
    assert code == (1 if classes["silent"] else 0)
    # Overloaded answers happened only while that fault was in force (added and removed mid-run)
    window = next(f for f in result["injectors"] if f["label"] == "overloaded-10")["windows"][0]
    refused = [r for r in result["records"] if r["error"] and r["error"].startswith("Overloaded")]
    assert refused and all(window["start"] <= r["sent_at"] <= window["end"] for r in refused)
    assert all("overloaded-10" in (r["fault"] or "") for r in refused)
    timed_out = [r for r in result["records"] if r["error"] and r["error"].startswith("WriteTimeout")]
    assert timed_out and all("timeout-20" in (r["fault"] or "") for r in timed_out)
    report = subprocess.run([*astrachaos(), "report", str(out)], capture_output=True, text=True, timeout=60)
    assert report.returncode == 0 and (out / "summary.md").is_file()


def test_a_burst_the_driver_throttles_is_never_sent(session: Any, tmp_path: Path) -> None:
    """The Java driver rejects what overflows its request queue: logged as stored, never on the wire."""
    classpath = java_client()
    table = _table(session, "java_burst")
    capture, app_log, out = tmp_path / "capture", tmp_path / "app.log", tmp_path / "out"
    with running_proxy(["--upstream", "127.0.0.1:9042", "--capture", str(capture)]) as proxy:
        host, port = proxy.listen[0]
        uploader = run_java_uploader(
            classpath, host, port, KS, table, 400, 50, app_log, linger_s=0, burst=True
        )
        output, _ = uploader.communicate(timeout=180)
        assert uploader.returncode == 0, output
        assert proxy.interrupt() == 130
    code, result = _verify(capture, out, app_log, table)
    logged, captured = _logged_keys(app_log), _captured_keys(capture)
    _check_against_raw_reads(session, table, result, logged, captured)
    assert result["counts"]["never_sent"] > 0 and code == 1


@pytest.mark.parametrize("protocol", ["V4", "V5"])
def test_the_java_driver_with_lz4_is_read_and_captured_completely(
    session: Any, tmp_path: Path, protocol: str
) -> None:
    """`advanced.protocol.compression = lz4` (lz4-java on the classpath): v4 bodies, v5 segments."""
    classpath = java_client()
    table = _table(session, f"java_lz4_{protocol.lower()}")
    capture, app_log, out = tmp_path / "capture", tmp_path / "app.log", tmp_path / "out"
    with running_proxy(["--upstream", "127.0.0.1:9042", "--capture", str(capture)]) as proxy:
        host, port = proxy.listen[0]
        uploader = run_java_uploader(classpath, host, port, KS, table, 200, 4, app_log, linger_s=3,
                                     compression="lz4", protocol=protocol)  # fmt: skip
        output, _ = uploader.communicate(timeout=180)
        assert uploader.returncode == 0, output
        stats = proxy.replayed_stats()
        assert proxy.interrupt() == 130
    assert stats["compressed_connections"].get("lz4", 0) >= 1, stats
    assert stats["not_followed"] == {"connections": 0, "refused": 0, "frames": 0, "requests": 0}
    code, result = _verify(capture, out, app_log, table)
    _check_against_raw_reads(session, table, result, _logged_keys(app_log), _captured_keys(capture))
    stopped = json.loads(app_log.read_text().splitlines()[-1])
    counts = result["counts"]
    assert stopped["acknowledged"] > 0 and stopped["failed_attempts"] == 0
    # every write the driver acknowledged went through the proxy, was read and verified present
    assert counts["told_success"] == counts["ok"] == stopped["acknowledged"] == counts["captured"]
    assert code == (1 if counts["silent"] else 0)  # only writes the app dropped at shutdown are silent
    assert result["proxy"]["not_followed"] == stats["not_followed"]


def test_the_node_driver_through_the_proxy_every_class_matches_a_raw_read(
    session: Any, tmp_path: Path
) -> None:
    """A careful Node.js writer (logs only acknowledged writes) under forward-then-timeout."""
    home = node_client()
    table = _table(session, "node_writes")
    capture, app_log, out = tmp_path / "capture", tmp_path / "app.log", tmp_path / "out"
    with running_proxy(_capturing(tmp_path, TIMEOUT_FAULT)) as proxy:
        host, port = proxy.listen[0]
        writer = run_node_uploader(home, host, port, KS, table, 300, app_log)
        output, _ = writer.communicate(timeout=180)
        assert writer.returncode == 0, output
        stats = proxy.replayed_stats()
        assert proxy.interrupt() == 130
    stopped = json.loads(app_log.read_text().splitlines()[-1])
    assert stopped["hosts"] == [f"{host}:{port}"]  # the driver knows the node by its proxy address only
    assert stats["not_followed"] == {"connections": 0, "refused": 0, "frames": 0, "requests": 0}
    code, result = _verify(capture, out, app_log, table)
    _check_against_raw_reads(session, table, result, _logged_keys(app_log), _captured_keys(capture))
    counts = result["counts"]
    assert counts["captured"] == 300 and counts["unverifiable"] == 0
    assert counts["told_success"] == stopped["acknowledged"] and stopped["failed"] > 0
    assert counts["recovered"] + counts["overwritten"] == stopped["failed"]  # told WriteTimeout, applied
    assert (code, counts["silent"], counts["never_sent"]) == (0, 0, 0)  # it logs only what was acknowledged


def _cqlsh() -> list[str]:
    """cqlsh from PyPI in a venv of its own (cached), so its driver does not replace ours."""
    from tests.integration.proxy_harness import CACHE

    home = CACHE / "cqlsh-venv"
    cqlsh = home / "bin" / "cqlsh"
    if not cqlsh.exists():
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=120)
        subprocess.run([str(home / "bin" / "pip"), "install", "-q", "cqlsh"], check=True, timeout=600)
    return [str(cqlsh)]


def test_cqlsh_copy_from_through_the_proxy_every_class_matches_a_raw_read(
    session: Any, tmp_path: Path
) -> None:
    cqlsh = _cqlsh()
    table = _table(session, "cqlsh_copy")
    rows = [(str(uuid.uuid4()), n, f"row-{n}") for n in range(300)]
    csv = tmp_path / "rows.csv"
    csv.write_text("".join(f"{i},{n},{b}\n" for i, n, b in rows))
    app_log = tmp_path / "app.log"  # what a loader would claim: every row of its file
    app_log.write_text("".join(json.dumps({"msg": "stored", "id": i, "seq": n}) + "\n" for i, n, _ in rows))
    capture, out = tmp_path / "capture", tmp_path / "out"
    with running_proxy(_capturing(tmp_path, TIMEOUT_FAULT, OVERLOADED_FAULT)) as proxy:
        host, port = proxy.listen[0]
        copy = subprocess.run(
            [*cqlsh, host, str(port), "-e",
             f"COPY {KS}.{table} (id, seq, body) FROM '{csv}' WITH MAXATTEMPTS = 2 AND CHUNKSIZE = 10"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
        )  # fmt: skip
        assert "rows imported" in copy.stdout + copy.stderr, copy.stdout + copy.stderr
        stats = proxy.replayed_stats()
        assert proxy.interrupt() == 130
    assert stats["capture"].get("writes_seen", 0) >= 300, stats
    code, result = _verify(capture, out, app_log, table)
    captured = _captured_keys(capture)
    _check_against_raw_reads(session, table, result, _logged_keys(app_log), captured)
    assert result["counts"]["unverifiable"] == 0, result["unverifiable_reasons"]
    assert code == (1 if result["counts"]["silent"] else 0)
