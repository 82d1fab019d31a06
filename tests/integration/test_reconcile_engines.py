"""The three reconcile engines (threads, --workers processes, Spark local[2]) against the real node.

Every engine runs the same `diff_range` per token range; these tests check that they find exactly
the same planted differences, and that a Spark run killed mid-way resumes to the same findings.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cassandra.concurrent import execute_concurrent_with_args

from astrachaos.local import LocalCluster
from astrachaos.reconcile.engines.processes import LocalProcesses
from astrachaos.reconcile.engines.spark import SparkTasks, spark_context
from astrachaos.reconcile.output import write_files
from astrachaos.reconcile.result import ReconcileResult
from astrachaos.reconcile.sides import open_sides
from astrachaos.reconcile.tables import TableOptions, compare_tables
from tests.integration.raw import raw_session
from tests.integration.test_reconcile import _CLI, INSERT, row_values

KS = "spark_reconcile_engines"
ROWS = 1500
SPLITS = 16
OLD = 1_600_000_000_000_000  # 2020, microseconds: every planted row but the in-flight ones
WHERE = " WHERE tenant=%s AND region=%s AND ts=%s AND id=%s"
COLUMNS = (
    "tenant text, region int, ts timestamp, id uuid, name text, amount decimal, tags set<text>,"
    " items list<int>, attrs map<text, int>, data blob, frozen_names frozen<list<text>>,"
    " PRIMARY KEY ((tenant, region), ts, id)"
)
MISSING_IN_TARGET = (5, 700, 1499)
MISSING_IN_SOURCE = (ROWS + 1, ROWS + 2)
DIFFERING = (10, 20)
IN_FLIGHT = (40, ROWS + 3)  # a differing row and a target-only row, written "now" (a future stamp)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`astrachaos ARGS` in a child process."""
    return subprocess.run([sys.executable, "-c", _CLI, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def planted(local_cluster: LocalCluster) -> Iterator[tuple[str, str]]:
    """src and dst of ROWS rows (written at OLD), with each kind of difference planted in dst."""
    with raw_session(list(local_cluster.contact_points)) as raw:
        raw.execute(f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")  # fmt: skip
        src, dst = f"{KS}.src", f"{KS}.dst"
        for table in (src, dst):
            raw.execute(f"DROP TABLE IF EXISTS {table}")
            raw.execute(f"CREATE TABLE {table} ({COLUMNS})")
            insert = raw.prepare(INSERT.format(t=table) + f" USING TIMESTAMP {OLD}")
            execute_concurrent_with_args(raw, insert, [row_values(i) for i in range(ROWS)], concurrency=64)
        for i in MISSING_IN_TARGET:
            raw.execute(f"DELETE FROM {dst} USING TIMESTAMP {OLD + 1}" + WHERE, row_values(i)[:4])
        for i in DIFFERING:
            raw.execute(f"UPDATE {dst} USING TIMESTAMP {OLD + 1} SET name=%s" + WHERE,
                        (f"changed {i}", *row_values(i)[:4]))  # fmt: skip
        raw.execute(raw.prepare(INSERT.format(t=dst) + f" USING TIMESTAMP {OLD + 1}"), row_values(ROWS + 1))
        raw.execute(raw.prepare(INSERT.format(t=dst) + f" USING TIMESTAMP {OLD + 1}"), row_values(ROWS + 2))
        future = int((time.time() + 30 * 86400) * 1_000_000)  # newer than any scan start of this module
        raw.execute(f"UPDATE {dst} USING TIMESTAMP {future} SET name='in flight'" + WHERE, row_values(40)[:4])
        raw.execute(raw.prepare(INSERT.format(t=dst) + f" USING TIMESTAMP {future}"), row_values(ROWS + 3))
        yield src, dst
        raw.execute(f"DROP KEYSPACE IF EXISTS {KS}")


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local[2] SparkContext for the whole test session (the UI off: nothing to look at)."""
    with spark_context("local[2]", {"spark.ui.enabled": "false"}) as sc:
        yield sc


def compare(src: str, dst: str, out: Path, engine: Any = None, **options: Any) -> ReconcileResult:
    """compare_tables through the local profile with `engine` (None: threads)."""
    with open_sides([src, dst], "local") as (s, t):
        return compare_tables(s, t, TableOptions(splits=SPLITS, **options), out, engine=engine)


def findings(result: ReconcileResult | dict[str, Any]) -> dict[str, Any]:
    """What an engine found (result.json without timings), for comparing engines."""
    data = result.to_json_dict() if isinstance(result, ReconcileResult) else result
    data = {**data, "settings": {k: v for k, v in data["settings"].items() if k != "seconds"}}
    data["counts"] = {k: v for k, v in data["counts"].items() if k != "ranges_resumed"}
    return data


def keys_of(rows: list[dict[str, Any]]) -> list[str]:
    """Each row's `id` (unique per planted row), sorted."""
    return sorted(r["id"] if "id" in r else r["key"]["id"] for r in rows)


def ids(numbers: tuple[int, ...]) -> list[str]:
    """The ids of rows `numbers`."""
    return sorted(str(row_values(i)[3]) for i in numbers)


@pytest.fixture(scope="module")
def single_process_out(planted: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default engine's result.json and differing.csv, as the CLI writes them."""
    out = tmp_path_factory.mktemp("threads")
    write_files(compare(*planted, out), out)
    return out


@pytest.fixture(scope="module")
def single_process(single_process_out: Path) -> dict[str, Any]:
    """The default engine's findings, checked against what was planted."""
    result = findings(json.loads((single_process_out / "result.json").read_text()))
    assert keys_of(result["missing_in_target"]) == ids(MISSING_IN_TARGET)
    assert keys_of(result["missing_in_source"]) == ids(MISSING_IN_SOURCE)
    assert keys_of(result["differing"]) == ids(DIFFERING)
    assert keys_of(result["in_flight"]) == ids(IN_FLIGHT)
    assert {f["kind"] for f in result["in_flight"]} == {"differing", "missing_in_source"}
    assert result["counts"]["equal"] == ROWS - 3 - 2 - 1 and result["exit_code"] == 1
    return result


def test_workers_2_find_exactly_what_the_single_process_finds(
    planted: tuple[str, str], single_process: dict[str, Any], tmp_path: Path
) -> None:
    result = compare(*planted, tmp_path, LocalProcesses(workers=2, threads=4))
    assert findings(result) == single_process


def test_spark_local2_finds_exactly_what_the_single_process_finds(
    planted: tuple[str, str], single_process: dict[str, Any], spark: Any, tmp_path: Path
) -> None:
    result = compare(*planted, tmp_path, SparkTasks())
    assert findings(result) == single_process
    lines = (tmp_path / "checkpoint.jsonl").read_text().splitlines()[1:]
    assert len(lines) == SPLITS == len({tuple(json.loads(x)["range"]) for x in lines})


def test_cli_engine_spark_writes_the_same_result_and_csv_and_prints_the_ui(
    planted: tuple[str, str], single_process: dict[str, Any], single_process_out: Path, tmp_path: Path
) -> None:
    done = cli("reconcile", "--source", planted[0], "--target", f"local:{planted[1]}",
               "--splits", str(SPLITS), "--engine", "spark", "--spark-master", "local[2]",
               "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Spark UI: http://" in done.stderr and "master local[2], 2 task slots" in done.stderr
    assert findings(json.loads((tmp_path / "result.json").read_text())) == single_process
    csv_text = (tmp_path / "differing.csv").read_text(encoding="utf-8")
    assert csv_text == (single_process_out / "differing.csv").read_text(encoding="utf-8")
    assert len(list(csv.reader(io.StringIO(csv_text)))) == 1 + len(DIFFERING)  # one column each


def test_spark_job_killed_midway_resumes_to_the_same_findings_none_twice(
    planted: tuple[str, str], single_process: dict[str, Any], spark: Any, tmp_path: Path
) -> None:
    # 300 rows/s per task slot: ~6 s for both tables, so the kill lands mid-way.
    args = ["reconcile", "--source", planted[0], "--target", planted[1], "--splits", str(SPLITS),
            "--engine", "spark", "--spark-master", "local[2]", "--max-rows-per-s", "300",
            "--out", str(tmp_path)]  # fmt: skip
    child = subprocess.Popen([sys.executable, "-c", _CLI, *args], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    checkpoint = tmp_path / "checkpoint.jsonl"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and child.poll() is None:
            if checkpoint.is_file() and len(checkpoint.read_text().splitlines()) > 1 + 2:
                break
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):  # a job that already ended has no group left
            os.killpg(child.pid, signal.SIGKILL)  # the CLI, its JVM and the Python workers
        child.wait()
    kept = len(checkpoint.read_text().splitlines()) - 1
    assert 2 < kept < SPLITS, f"the kill did not land mid-way ({kept} of {SPLITS} ranges were done)"
    resumed = compare(*planted, tmp_path, SparkTasks(), resume=True)
    assert resumed.counts["ranges_resumed"] == kept
    assert findings(resumed) == single_process  # same findings, none listed twice
    ranges = [tuple(json.loads(x)["range"]) for x in checkpoint.read_text().splitlines()[1:]]
    assert len(ranges) == len(set(ranges)) == SPLITS


def test_rows_written_during_a_spark_scan_are_in_flight_never_differences(
    planted: tuple[str, str], single_process: dict[str, Any], spark: Any, local_cluster: LocalCluster,
    tmp_path: Path,
) -> None:  # fmt: skip
    written: list[str] = []
    stop = threading.Event()

    def writer(raw: Any) -> None:  # target-only rows, while the ranges are being read
        insert = raw.prepare(INSERT.format(t=planted[1]))
        while not (tmp_path / "checkpoint.jsonl").is_file():  # the scan start is taken just after
            time.sleep(0.01)
        time.sleep(0.2)  # rows written before the scan started are differences, rightly
        i = 10_000
        while not stop.is_set():
            raw.execute(insert, row_values(i))
            written.append(str(row_values(i)[3]))
            i += 1
            time.sleep(0.01)

    with raw_session(list(local_cluster.contact_points)) as raw:
        thread = threading.Thread(target=writer, args=(raw,))
        thread.start()
        try:
            result = findings(compare(*planted, tmp_path, SparkTasks(), max_rows_per_s=1000))
        finally:
            stop.set()
            thread.join()
        for i in range(10_000, 10_000 + len(written)):
            raw.execute(f"DELETE FROM {planted[1]}" + WHERE, row_values(i)[:4])
    for kind in ("missing_in_target", "missing_in_source", "differing"):
        assert result[kind] == single_process[kind]
    late = [f for f in result["in_flight"] if f["key"]["id"] in written]
    assert late, f"none of the {len(written)} rows written during the scan was read by it"
    assert {f["kind"] for f in late} == {"missing_in_source"}
    assert keys_of([f for f in result["in_flight"] if f not in late]) == ids(IN_FLIGHT)


def test_the_profile_secret_reaches_spark_workers_through_their_environment_only(
    planted: tuple[str, str], spark: Any, tmp_path: Path
) -> None:
    from pydantic import SecretStr

    from astrachaos.config.settings import load_profile
    from astrachaos.reconcile.portable import PortableProfile

    secret = "spark-secret-4f1c"  # the node has no authenticator: any password connects
    profile = load_profile("local").profile.model_copy(
        update={"name": "spark-auth", "username": "u", "password": SecretStr(secret)}
    )
    portable = PortableProfile.of(profile)
    with open_sides(list(planted), "local") as (s, t):
        sides = [replace(side, profile=portable) for side in (s, t)]
        options = TableOptions(splits=4)
        without = compare_tables(*sides, options, tmp_path / "without", engine=SparkTasks())
        with_env = [replace(side, secret_env=portable.secret_env(profile)) for side in sides]
        found = compare_tables(*with_env, options, tmp_path / "with", engine=SparkTasks())
    assert without.counts["ranges_failed"] == 4  # the workers could not build the profile
    assert found.counts["ranges_failed"] == 0 and found.counts["source_rows"] == ROWS
    written = json.dumps(without.to_json_dict()) + (tmp_path / "without" / "checkpoint.jsonl").read_text()
    assert secret not in written
