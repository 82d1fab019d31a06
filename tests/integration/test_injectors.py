"""Injectors on the real node: each fault shows up per record, checked by an independent read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from astrachaos.errors import ExitCode
from tests.integration.raw import raw_session, rows_of_run
from tests.integration.test_scenarios import run, table_rows

pytestmark = pytest.mark.integration


def keys(records: list[dict[str, Any]], record_class: str) -> list[tuple[int, int]]:
    return [(r["key"]["bucket"], r["key"]["key"]) for r in records if r["class"] == record_class]


def test_client_failures_are_counted_and_every_failed_record_is_absent(
    local_cluster: Any, tmp_path: Path
) -> None:
    result = run("basic-chaos", tmp_path, "workload.records=3000")
    rows = table_rows(local_cluster, result, 16)
    [stats] = result["injectors"]
    failed = keys(result["records"], "failed")

    assert result["exit_code"] == ExitCode.OK
    assert stats["requests"] == 3000 and 0.15 < stats["injected"] / stats["requests"] < 0.25
    assert stats["by_type"] == {"Unavailable": stats["injected"]}
    assert len(failed) == stats["injected"] == result["counts"]["failed"]
    assert not set(failed) & set(rows)
    assert result["counts"]["lost"] == 0 and len(rows) == 3000 - len(failed)
    assert {r["last_error"] for r in result["records"]} == {"Unavailable"}


def test_applied_then_error_is_recovered_and_timeout_before_send_is_indeterminate(
    local_cluster: Any, tmp_path: Path
) -> None:
    result = run("applied-then-error", tmp_path, "workload.records=2000")
    rows = table_rows(local_cluster, result, 16)
    recovered, indeterminate = keys(result["records"], "recovered"), keys(result["records"], "indeterminate")

    assert recovered and indeterminate
    assert set(recovered) <= set(rows), "applied-then-error writes are in the table"
    assert not set(indeterminate) & set(rows)
    applied = next(s for s in result["injectors"] if s["by_type"].get("applied-then-error"))
    assert applied["injected"] == len(recovered)


def test_clock_skew_shadows_the_skewed_writers_acknowledged_writes(
    local_cluster: Any, tmp_path: Path
) -> None:
    result = run("clock-skew", tmp_path, "workload.records=1000")
    rows = table_rows(local_cluster, result, 16)
    overwritten = [r for r in result["records"] if r["class"] == "overwritten"]

    assert result["exit_code"] == ExitCode.EXPECTATIONS_UNMET
    assert len(overwritten) == 500 and {r["writer"] for r in overwritten} == {1}
    assert all(r["driver_outcome"] == "acked" for r in overwritten)
    for r in overwritten:
        assert rows[(r["key"]["bucket"], r["key"]["key"])].writer == 0
    assert all("last-write-wins kept the older write" in r["found"] for r in overwritten)


def test_flaky_faults_toggle_and_tag_the_records_they_hit(local_cluster: Any, tmp_path: Path) -> None:
    # 10,000 records at rate 5,000/s: ~2 s of toggles every 50-250 ms, each on with p 0.5. Fewer
    # records finished before a third window opened once the write path got faster (CI: 2 windows).
    result = run("flaky-network", tmp_path, "workload.records=10000")
    windows = json.loads((tmp_path / "flaky-network" / "faults.json").read_text())
    rows = table_rows(local_cluster, result, 16)

    assert len(windows) >= 2 and all(w["end_ns"] > w["start_ns"] for w in windows)
    silent = [r for r in result["records"] if r["silent"]]
    assert silent and all(r["faults"] == ["client"] for r in silent)
    assert not {(r["key"]["bucket"], r["key"]["key"]) for r in silent} & set(rows)


def test_ctrl_c_rolls_back_keeps_the_run_and_exits_130(local_cluster: Any, tmp_path: Path) -> None:
    run_dir = tmp_path / "interrupted"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "astrachaos",
            "run",
            "latency",
            "--out",
            str(run_dir),
            "--set",
            "workload.records=200000",
            "--set",
            "injectors.0.schedule.start_s=0",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (run_dir / "ledger.sqlite").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=120)

    assert child.returncode == 130, stderr
    assert "rolled back" in stderr and "Traceback" not in stderr
    windows = json.loads((run_dir / "faults.json").read_text())
    assert windows and all(w["end_ns"] is not None for w in windows)
    verified = subprocess.run(
        [sys.executable, "-m", "astrachaos", "verify", str(run_dir)], capture_output=True
    )
    assert verified.returncode in (0, 1)


def test_sigterm_is_an_interrupt_too(local_cluster: Any, tmp_path: Path) -> None:
    run_dir = tmp_path / "terminated"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "astrachaos",
            "run",
            "basic-chaos",
            "--out",
            str(run_dir),
            "--set",
            "workload.records=200000",
            "--set",
            "workload.rate=2000",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    time.sleep(8)
    child.terminate()
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 130, stderr


@pytest.mark.three_nodes
def test_node_kill_at_quorum_loses_nothing_and_reports_hint_lag_as_stale(
    three_node_cluster: Any, tmp_path: Path
) -> None:
    result = run("node-kill", tmp_path, "workload.records=8000")
    [stats] = result["injectors"]
    with raw_session(three_node_cluster.contact_points) as session:
        rows = rows_of_run(session, f"astrachaos.{result['table']}", result["run_id"], 16)

    assert stats["by_type"] == {"kill": 1}
    assert result["counts"]["lost"] == 0 and result["counts"]["silent"] == 0
    assert len(rows) == result["counts"]["ok"] + result["counts"]["stale"] + result["counts"]["recovered"]
    assert all(node.state().value == "up" for node in three_node_cluster.nodes), "rolled back"
    assert result["exit_code"] == ExitCode.OK


def test_wire_overload_answers_real_error_frames_and_each_refused_record_is_absent(
    local_cluster: Any, tmp_path: Path
) -> None:
    result = run("wire-overload", tmp_path, "workload.records=1500")
    rows = table_rows(local_cluster, result, 16)
    [stats] = result["injectors"]
    failed = [r for r in result["records"] if r["class"] == "failed"]

    assert result["exit_code"] == ExitCode.EXPECTATIONS_UNMET
    assert stats["by_type"] == {"overloaded": len(failed)} and 0.2 < len(failed) / 1500 < 0.4
    assert {r["last_error"] for r in failed} == {"OverloadedErrorMessage"}
    assert all(r["silent"] for r in failed)
    assert not {(r["key"]["bucket"], r["key"]["key"]) for r in failed} & set(rows)


def test_wire_timeout_writes_are_applied_though_the_client_timed_out(
    local_cluster: Any, tmp_path: Path
) -> None:
    result = run("wire-timeout", tmp_path, "workload.records=400")
    rows = table_rows(local_cluster, result, 16)

    assert result["exit_code"] == ExitCode.OK
    assert result["counts"]["recovered"] == 400 == len(rows)
    assert {r["last_error"] for r in result["records"]} == {"OperationTimedOut"}


ERROR_PAIRS = [  # client injector class name -> protocol injector error frame of the same error
    ("WriteTimeout", "write_timeout"),
    ("Unavailable", "unavailable"),
    ("Overloaded", "overloaded"),
    ("ServerError", "server_error"),
]


@pytest.mark.parametrize(("client_error", "frame"), ERROR_PAIRS)
def test_client_error_class_is_what_the_driver_raises_for_the_real_error_frame(
    local_cluster: Any, tmp_path: Path, client_error: str, frame: str
) -> None:
    from astrachaos.injectors.client import driver_error

    wire = run(
        "wire-overload",
        tmp_path,
        "workload.records=100",
        f"injectors.0.params.error={frame}",
        "injectors.0.schedule.probability=1.0",
        "pattern.name=careful",
        "pattern.max_attempts=1",
        "target.driver.retry.policy=fallthrough",
    )
    raised_by_driver = {r["last_error"] for r in wire["records"]}
    assert raised_by_driver == {type(driver_error(client_error)).__name__}  # type: ignore[arg-type]


def test_proxy_without_toxics_carries_real_traffic_and_keeps_the_verdict(
    local_cluster: Any, tmp_path: Path
) -> None:
    direct = run("queue-overflow-fixed", tmp_path / "direct", "workload.records=3000")
    proxied = run(
        "queue-overflow-fixed",
        tmp_path / "proxied",
        "workload.records=3000",
        "injectors.0.name=network",
        "injectors.0.params.toxic=latency",
        "injectors.0.params.toxicity=0.0",
    )
    rows = table_rows(local_cluster, proxied, 16)
    assert direct["exit_code"] == proxied["exit_code"] == ExitCode.OK
    assert proxied["counts"] == direct["counts"] and len(rows) == 3000
    assert proxied["injectors"][0]["requests"] >= 1, "the driver went through the proxy"


def _listening(address: str, port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((address, port)) == 0


def _paused(pid: int) -> bool:
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state in ("T", "t")


def test_sigint_leaves_no_proxy_listening_and_no_node_paused(local_cluster: Any, tmp_path: Path) -> None:
    scenario = tmp_path / "freeze.yaml"
    scenario.write_text(
        "workload: {writers: 1, records: 100000, batch_size: 50, rate: 2000}\n"
        "pattern: {name: fire-and-forget}\n"
        "injectors:\n"
        "  - {name: network, params: {toxic: latency, latency_ms: 20}}\n"
        "  - {name: node, params: {action: pause, node: node1}, schedule: {start_s: 3, duration_s: 30}}\n"
    )
    run_dir = tmp_path / "run"
    child = subprocess.Popen(
        [sys.executable, "-m", "astrachaos", "run", str(scenario), "--out", str(run_dir), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    node = local_cluster.nodes[0]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _paused(node.pid()):
        time.sleep(0.2)
    assert _paused(node.pid()), "the node injector should have frozen node1"
    assert _listening("127.0.0.101", 9042), "the driver should be going through the proxy"
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=180)

    assert child.returncode == 130, stderr
    assert not _paused(node.pid())
    assert not _listening("127.0.0.101", 9042)
    windows = json.loads((run_dir / "faults.json").read_text())
    assert {w["injector"] for w in windows} == {"network", "node"}
    assert all(w["end_ns"] is not None for w in windows)


@pytest.mark.parametrize(
    ("name", "overrides", "exit_code", "classes"),
    [
        ("simple-chaos-query", (), ExitCode.OK, {"failed", "indeterminate"}),
        ("uploader-chaos", ("workload.records=2000",), ExitCode.EXPECTATIONS_UNMET, {"indeterminate"}),
        (
            "multi-session",
            ("workload.records=3000",),
            ExitCode.EXPECTATIONS_UNMET,
            {"failed", "indeterminate"},
        ),
        ("insert-simulator", ("workload.records=2000",), ExitCode.OK, set()),
        ("specific-error", ("workload.records=1000",), ExitCode.EXPECTATIONS_UNMET, {"failed"}),
    ],
)
def test_seed_scenario_verdicts_agree_with_a_raw_read(
    local_cluster: Any,
    tmp_path: Path,
    name: str,
    overrides: tuple[str, ...],
    exit_code: int,
    classes: set[str],
) -> None:
    result = run(name, tmp_path, *overrides)
    rows = table_rows(local_cluster, result, 16)
    absent = {(r["key"]["bucket"], r["key"]["key"]) for r in result["records"] if r["found"] == "absent"}

    assert result["exit_code"] == exit_code
    assert {r["class"] for r in result["records"]} - {"recovered"} == classes
    assert not absent & set(rows)
    assert result["counts"]["present"] == len(rows)
    assert result["counts"]["ok"] + result["counts"]["recovered"] == len(rows)


@pytest.mark.three_nodes
def test_weak_read_after_a_frozen_replica_is_stale_not_lost(three_node_cluster: Any, tmp_path: Path) -> None:
    result = run("missing-records-stale-read", tmp_path, "workload.records=4000")
    with raw_session(three_node_cluster.contact_points) as session:
        rows = rows_of_run(session, f"astrachaos.{result['table']}", result["run_id"], 16)

    assert result["counts"]["lost"] == 0 and result["counts"]["silent"] == 0
    assert result["counts"]["ok"] + result["counts"]["stale"] + result["counts"]["recovered"] == len(rows)
    assert all(node.state().value == "up" for node in three_node_cluster.nodes)


def test_session_reset_injector_cuts_off_queued_requests(local_cluster: Any, tmp_path: Path) -> None:
    result = run(
        "session-reset", tmp_path, "workload.records=6000", "pattern.session_reset=null",
        "injectors.0.name=client", "injectors.0.params.action=session-reset",
        "injectors.0.schedule.start_s=0.2", "injectors.0.schedule.duration_s=0.5",
    )
    rows = table_rows(local_cluster, result, 16)
    dropped = [r for r in result["records"] if r["class"] == "dropped"]

    assert result["injectors"][0]["by_type"] == {"session-reset": 1}
    assert any("session reset 1 time" in note for note in result["notes"])
    assert all((r["key"]["bucket"], r["key"]["key"]) not in rows for r in dropped)
    assert result["counts"]["present"] == len(rows)
