"""Robustness against the real node: bad input, odd states and signals end in a clear message and
the documented exit code, never a traceback; evidence is never overwritten or touched by reading."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from astrachaos.local.process import ProcessState, process_state
from tests.integration.raw import raw_session

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "astrachaos"]
TABLE = "robust_evidence"


def _cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    merged = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset}
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env=merged, timeout=timeout)
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def finished_run(local_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small finished run of queue-overflow (its budgets include the silent one) on its own table."""
    run_dir = tmp_path_factory.mktemp("robust") / "run"
    done = _cli(
        "run",
        "queue-overflow",
        "--out",
        str(run_dir),
        "--quiet",
        "--seed",
        "5",
        "--set",
        f"schema.table={TABLE}",
        "--set",
        "workload.records=3000",
    )
    assert done.returncode in (0, 1), done.stderr
    return run_dir


def test_a_second_run_into_a_used_directory_is_refused_and_changes_no_byte(finished_run: Path) -> None:
    before = _files(finished_run)
    done = _cli(
        "run",
        "uploader-verification",
        "--out",
        str(finished_run),
        "--quiet",
        "--set",
        f"schema.table={TABLE}",
    )
    assert done.returncode == 2
    assert "never writes into an existing run directory" in done.stderr
    assert _files(finished_run) == before


def test_verify_changes_only_result_json_and_uses_the_runs_own_scenario(finished_run: Path) -> None:
    before = _files(finished_run)
    done = _cli("verify", str(finished_run))
    assert done.returncode in (0, 1), done.stderr
    after = _files(finished_run)
    assert {name: data for name, data in after.items() if name != "result.json"} == {
        name: data for name, data in before.items() if name != "result.json"
    }
    result = json.loads(after["result.json"])
    assert (result["scenario"], result["pattern"]) == ("queue-overflow", "uploader")
    assert "silent" in {e["name"] for e in result["expectations"]}


def test_verify_after_the_table_was_dropped_is_a_clean_environment_error(
    local_cluster: Any, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    table = "robust_dropped"
    assert (
        _cli(
            "run", "uploader-verification", "--out", str(run_dir), "--quiet", "--set", f"schema.table={table}"
        ).returncode
        == 0
    )
    assert _cli("table", "drop", "--table", table, "--yes").returncode == 0
    before = _files(run_dir)
    done = _cli("verify", str(run_dir))
    assert done.returncode == 4
    assert f"cannot read the run table astrachaos.{table}" in done.stderr
    assert "does not exist" in done.stderr
    assert _files(run_dir) == before


def test_verify_of_a_zero_length_ledger_leaves_it_zero_length(finished_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "empty-ledger"
    run_dir.mkdir()
    (run_dir / "scenario.yaml").write_bytes((finished_run / "scenario.yaml").read_bytes())
    (run_dir / "ledger.sqlite").touch()
    done = _cli("verify", str(run_dir))
    assert done.returncode == 4
    assert "is not an astrachaos ledger" in done.stderr
    assert sorted(p.name for p in run_dir.iterdir()) == ["ledger.sqlite", "scenario.yaml"]
    assert (run_dir / "ledger.sqlite").stat().st_size == 0


def test_table_drop_of_a_missing_table_says_so_and_exits_2(local_cluster: Any) -> None:
    done = _cli("table", "drop", "--table", "robust_never_created", "--yes")
    assert done.returncode == 2
    assert "does not exist; nothing was dropped" in done.stderr


def test_zero_records_is_an_invalid_scenario_and_creates_nothing(tmp_path: Path) -> None:
    done = _cli("run", "uploader-verification", "--out", str(tmp_path / "r"), "--set", "workload.records=0")
    assert done.returncode == 3
    assert "workload.records" in done.stderr and "must be at least 1" in done.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("bundle", "message"),
    [("missing.zip", "does not exist"), ("not-a-zip.zip", "is not a zip file")],
)
def test_a_bad_astra_bundle_is_refused_before_a_run_directory_exists(
    tmp_path: Path, bundle: str, message: str
) -> None:
    (tmp_path / "not-a-zip.zip").write_text("not a zip")
    env = {
        "ASTRA_DB_APPLICATION_TOKEN": "AstraCS:test",
        "ASTRACHAOS_SECURE_CONNECT_BUNDLE": str(tmp_path / bundle),
    }
    done = _cli(
        "run", "uploader-verification", "--out", str(tmp_path / "r"), "--set", "target.profile=astra", env=env
    )
    assert done.returncode == 4
    assert message in done.stderr
    assert not (tmp_path / "r").exists()


def test_a_missing_astra_token_is_refused_before_a_run_directory_exists(tmp_path: Path) -> None:
    env = {"ASTRACHAOS_SECURE_CONNECT_BUNDLE": str(tmp_path / "b.zip")}
    done = _cli(
        "run",
        "uploader-verification",
        "--out",
        str(tmp_path / "r"),
        "--set",
        "target.profile=astra",
        env=env,
        unset=("ASTRA_DB_APPLICATION_TOKEN", "ASTRACHAOS_TOKEN"),
    )
    assert done.returncode == 3
    assert "needs token" in done.stderr
    assert not (tmp_path / "r").exists()


def test_an_unreachable_database_is_exit_4(tmp_path: Path) -> None:
    done = _cli(
        "run",
        "uploader-verification",
        "--out",
        str(tmp_path / "r"),
        "--set",
        "target.profile=cassandra",
        env={"ASTRACHAOS_PORT": "9"},
    )
    assert done.returncode == 4
    assert "cannot connect" in done.stderr


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("keys.csv", b"run_id,bucket,key\nx,1,2\n\xffy,1,3\n", "keys.csv:3: not UTF-8"),
        (
            "keys.jsonl",
            b'{"run_id": "x", "bucket": 1, "key": 2}\n{"run_id": "\xe9"}\n',
            "keys.jsonl:2: not UTF-8",
        ),
    ],
)
def test_reconcile_of_a_file_that_is_not_utf8_names_file_and_line(
    local_cluster: Any, finished_run: Path, tmp_path: Path, name: str, content: bytes, where: str
) -> None:
    (tmp_path / name).write_bytes(content)
    done = _cli(
        "reconcile",
        "--out",
        str(tmp_path / "out"),
        "--expected",
        str(tmp_path / name),
        "--table",
        f"astrachaos.{TABLE}",
        "--key",
        "run_id,bucket,key",
    )
    assert done.returncode == 2
    assert where in done.stderr


def test_reconcile_whose_match_keeps_no_line_is_exit_3_not_equal(
    local_cluster: Any, finished_run: Path, tmp_path: Path
) -> None:
    log = tmp_path / "app.jsonl"
    log.write_text(
        "".join(json.dumps({"level": "info", "run_id": "x", "bucket": 1, "key": k}) + "\n" for k in range(50))
    )
    done = _cli(
        "reconcile",
        "--out",
        str(tmp_path / "out"),
        "--expected",
        str(log),
        "--table",
        f"astrachaos.{TABLE}",
        "--key",
        "run_id,bucket,key",
        "--match",
        "level=error",
    )
    assert done.returncode == 3
    assert "no expected key was read after --match" in done.stderr


def test_report_and_suite_and_local_failure_paths_are_clean(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "result.json").write_text("{")
    # A directory that does not exist is a usage error for report and verify alike (issue 11).
    assert _cli("report", str(tmp_path / "nowhere")).returncode == 2
    assert _cli("verify", str(tmp_path / "nowhere")).returncode == 2
    broken = _cli("report", str(tmp_path / "bad"), "-f", "html")
    assert broken.returncode == 3 and "is not a run directory" in broken.stderr
    assert _cli("suite", str(tmp_path / "no-suite.yaml")).returncode == 3
    assert _cli("local", "down", "--name", "robust-no-such-cluster").returncode == 2
    assert _cli("local", "logs", "node9").returncode == 2


# -- signals and node faults (these briefly pause the shared default node; always resumed) ------


@pytest.fixture
def node1(local_cluster: Any) -> Iterator[int]:
    """The default node's pid; whatever happens, it is running (SIGCONT) after the test."""
    pid = local_cluster.nodes[0].pid()
    assert pid is not None
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def _wait_state(pid: int, paused: bool, timeout_s: float) -> float | None:
    """Seconds until the node is (or no longer is) paused; None on timeout."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if (process_state(pid) is ProcessState.STOPPED) == paused:
            return time.monotonic() - began
        time.sleep(0.02)
    return None


PAUSE_SCENARIO = """
name: robust-pause
schema: {table: robust_pause}
workload: {writers: 2, records: 200000, batch_size: 50, rate: 2000}
pattern: {name: careful}
injectors:
  - name: node
    params: {action: pause, node: node1}
    schedule: {start_s: 1}
"""


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_resumes_a_paused_node_within_two_seconds(
    node1: int, tmp_path: Path, stop: signal.Signals
) -> None:
    scenario = tmp_path / "robust-pause.yaml"
    scenario.write_text(PAUSE_SCENARIO)
    run_dir = tmp_path / "run"
    child = subprocess.Popen(
        [*CLI, "run", str(scenario), "--out", str(run_dir), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _wait_state(node1, paused=True, timeout_s=60) is not None, "the fault never applied"
        time.sleep(0.5)
        child.send_signal(stop)
        resumed_after = _wait_state(node1, paused=False, timeout_s=10)
        _out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert resumed_after is not None and resumed_after < 2.0, f"resumed after {resumed_after}"
    assert child.returncode == 130, err
    assert "Traceback" not in err
    assert "faults rolled back" in err
    windows = json.loads((run_dir / "faults.json").read_text())
    assert windows and all(w["end_ns"] is not None for w in windows)
    with raw_session(["127.0.0.1"]) as session:
        assert session.execute("SELECT release_version FROM system.local").one() is not None


def test_run_names_a_paused_node_and_local_up_resumes_it_within_seconds(node1: int, tmp_path: Path) -> None:
    os.kill(node1, signal.SIGSTOP)
    assert _wait_state(node1, paused=True, timeout_s=5) is not None
    refused = _cli("run", "uploader-verification", "--out", str(tmp_path / "r"), timeout=60)
    assert refused.returncode == 4
    assert "node1 is paused (SIGSTOP)" in refused.stderr and "local up" in refused.stderr
    began = time.monotonic()
    done = _cli("local", "up", timeout=60)
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    assert "node1 was paused" in done.stdout and "resumed it with SIGCONT" in done.stdout
    assert process_state(node1) is not ProcessState.STOPPED
    assert took < 15, f"local up took {took:.1f}s"


# -- retry-forever under overload: bounded by the run's own budget, stopped by a signal --------

BIG_OVERFLOW = ["queue-overflow", "--set", "workload.records=300000", "--set", "schema.table=robust_qo"]


def test_queue_overflow_at_300000_records_ends_at_max_duration_with_pending_work_dropped(
    local_cluster: Any, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    began = time.monotonic()
    done = _cli("run", *BIG_OVERFLOW, "--set", "workload.max_duration_s=8", "--out", str(run_dir), "--quiet")
    took = time.monotonic() - began
    assert done.returncode == 1, done.stderr
    result = json.loads((run_dir / "result.json").read_text())
    (note,) = [n for n in result["notes"] if "max_duration_s" in n]
    assert "retries still pending were dropped at shutdown" in note
    assert 0 < result["counts"]["records"] < 300_000
    assert result["counts"]["dropped"] > 0 and result["counts"]["silent"] > 0
    assert took < 120, f"took {took:.0f}s"


def test_max_duration_also_bounds_writer_processes(local_cluster: Any, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    began = time.monotonic()
    done = _cli(
        "run", "basic-chaos", "--set", "workload.records=300000", "--set", "workload.writers=2",
        "--set", "workload.processes=2", "--set", "workload.max_duration_s=6",
        "--set", "schema.table=robust_budget2", "--out", str(run_dir), "--quiet",
    )  # fmt: skip
    took = time.monotonic() - began
    assert done.returncode == 0, done.stderr
    result = json.loads((run_dir / "result.json").read_text())
    (note,) = [n for n in result["notes"] if "max_duration_s" in n]
    assert "(6 s) reached" in note
    assert 0 < result["counts"]["records"] < 300_000  # verified: only what was handed over
    assert took < 120, f"took {took:.0f}s"


def test_sigint_ends_a_300000_record_queue_overflow_within_seconds(
    local_cluster: Any, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    child = subprocess.Popen(
        [*CLI, "run", *BIG_OVERFLOW, "--out", str(run_dir), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (run_dir / "app.log.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(5)  # retries pile up
        assert child.poll() is None
        signalled = time.monotonic()
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
        took = time.monotonic() - signalled
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, err
    assert took < 6, f"stopped {took:.1f}s after SIGINT"
    assert "Traceback" not in err


def test_a_suite_entry_that_must_be_refused_passes_and_a_used_out_is_refused(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: refusals\nruns:\n"
        "  - {name: empty, scenario: uploader-verification, set: {workload.records: 0}, expect_exit: 3}\n"
    )
    out = tmp_path / "out"
    done = _cli("suite", str(suite), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1/1 passed" in done.stdout
    again = _cli("suite", str(suite), "--out", str(out))
    assert again.returncode == 2
    assert "never writes into an existing run directory" in again.stderr


def test_an_out_path_that_is_a_file_is_refused_by_run_and_reconcile(
    finished_run: Path, tmp_path: Path
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    ran = _cli("run", "uploader-verification", "--out", str(a_file), "--quiet")
    assert ran.returncode == 2 and "is a file" in ran.stderr
    reconciled = _cli("reconcile", "--out", str(a_file), "--run", str(finished_run))
    assert reconciled.returncode == 2 and "is a file" in reconciled.stderr
    under = _cli("run", "uploader-verification", "--out", str(a_file / "sub"), "--quiet")
    assert under.returncode == 4 and "cannot create the run directory" in under.stderr
    assert a_file.read_text() == "keep me"
