"""Every shipped scenario at small scale on the real node, its verdict checked by a raw read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from astrachaos.config.catalog import resolve
from astrachaos.config.loader import load_scenario
from astrachaos.errors import ExitCode
from astrachaos.run.runner import Runner
from tests.integration.raw import raw_session, rows_of_run

pytestmark = pytest.mark.integration


def run(name: str, tmp_path: Path, *overrides: str) -> dict[str, Any]:
    scenario = load_scenario(resolve(name), overrides, random_seed=7)
    runner = Runner(scenario, tmp_path / name)
    runner.run()
    result: dict[str, Any] = json.loads((tmp_path / name / "result.json").read_text())
    return result


def table_rows(
    local_cluster: Any, result: dict[str, Any], buckets: int
) -> dict[tuple[int, int], Any]:
    with raw_session(local_cluster.contact_points) as session:
        return rows_of_run(
            session, f"{result['keyspace']}.{result['table']}", result["run_id"], buckets
        )


def app_logged_ids(run_dir: Path) -> set[int]:
    ids: set[int] = set()
    for line in (run_dir / "app.log.jsonl").read_text().splitlines():
        entry = json.loads(line)
        if entry["level"] == "info" and "record_ids" in entry:
            ids.update(entry["record_ids"])
    return ids


def test_queue_overflow_loses_rows_silently_and_lists_them(
    local_cluster: Any, tmp_path: Path
) -> None:
    result = run("queue-overflow", tmp_path, "workload.records=3000")
    rows = table_rows(local_cluster, result, 16)
    counts = result["counts"]

    assert result["exit_code"] == ExitCode.EXPECTATIONS_UNMET
    assert app_logged_ids(tmp_path / "queue-overflow") == set(range(3000))  # the app claims all
    assert counts["silent"] > 0 and counts["dropped"] > 0
    assert counts["present"] == len(rows) < 3000
    silent_absent = [r for r in result["records"] if r["silent"] and r["found"] == "absent"]
    assert silent_absent, "the report must list silent, absent records by key"
    for record in silent_absent:
        assert (record["key"]["bucket"], record["key"]["key"]) not in rows
    assert {r["last_error"] for r in silent_absent} == {"RequestThrottlingError"}
    present_ids = {row.record_id for row in rows.values()}
    listed = {r["record_id"] for r in result["records"]}
    assert present_ids | listed == set(range(3000))


def test_queue_overflow_fixed_writes_everything(local_cluster: Any, tmp_path: Path) -> None:
    result = run("queue-overflow-fixed", tmp_path, "workload.records=3000")
    rows = table_rows(local_cluster, result, 16)

    assert result["exit_code"] == ExitCode.OK
    assert result["counts"]["silent"] == 0 and result["counts"]["ok"] == 3000
    assert {row.record_id for row in rows.values()} == set(range(3000))
    assert result["throttler"]["max_in_flight_seen"] <= 32


def test_queue_full_drops_are_absent(local_cluster: Any, tmp_path: Path) -> None:
    result = run("queue-full", tmp_path, "workload.records=2000")
    rows = table_rows(local_cluster, result, 16)

    assert result["exit_code"] == ExitCode.EXPECTATIONS_UNMET
    dropped = [r for r in result["records"] if r["class"] == "dropped"]
    assert dropped and all(r["silent"] for r in dropped)
    assert all((r["key"]["bucket"], r["key"]["key"]) not in rows for r in dropped)
    assert result["counts"]["ok"] == len(rows)


def test_uploader_verification_clean_run_is_ok(local_cluster: Any, tmp_path: Path) -> None:
    result = run("uploader-verification", tmp_path)
    rows = table_rows(local_cluster, result, 16)

    assert result["exit_code"] == ExitCode.OK
    assert {row.record_id for row in rows.values()} == set(range(15))


def test_partial_silent_loss_finds_each_corruption_by_key(
    local_cluster: Any, tmp_path: Path
) -> None:
    result = run("partial-silent-loss", tmp_path, "workload.records=4000", "workload.writers=4")
    rows = table_rows(local_cluster, result, 32)
    by_class: dict[str, list[dict[str, Any]]] = {}
    for r in result["records"]:
        by_class.setdefault(r["class"], []).append(r)

    assert result["exit_code"] == ExitCode.EXPECTATIONS_UNMET
    corrupted, unexpected, lost = (by_class.get(c, []) for c in ("corrupted", "unexpected", "lost"))
    assert corrupted and unexpected and lost
    assert 0.02 < (len(corrupted) + len(lost)) / 4000 < 0.08  # ~5% corrupted by the app
    for r in corrupted:
        assert rows[(r["key"]["bucket"], r["key"]["key"])].payload is None
    for r in unexpected:
        row = rows[(r["key"]["bucket"], r["key"]["key"])]
        assert row.record_id == r["record_id"] and row.record_id % 32 != r["key"]["bucket"]
    for r in lost:
        assert (r["key"]["bucket"], r["key"]["key"]) not in rows
        assert r["found"].startswith("misplaced")
    assert {r["record_id"] for r in lost} == {r["record_id"] for r in unexpected}


def test_key_collision_reports_overwritten_records(local_cluster: Any, tmp_path: Path) -> None:
    result = run("key-collision", tmp_path, "workload.records=2000")
    rows = table_rows(local_cluster, result, 16)
    overwritten = [r for r in result["records"] if r["class"] == "overwritten"]

    assert result["exit_code"] == ExitCode.EXPECTATIONS_UNMET
    assert overwritten, "millisecond keys under 4 writers must collide"
    for r in overwritten:
        holder = rows[(r["key"]["bucket"], r["key"]["key"])]
        assert holder.record_id != r["record_id"]
    assert result["counts"]["ok"] == len(rows)
    assert result["counts"]["ok"] + len(overwritten) == 2000


def test_session_reset_mid_stream_drops_queued_writes_silently(
    local_cluster: Any, tmp_path: Path
) -> None:
    result = run(
        "session-reset",
        tmp_path,
        "workload.records=6000",
        "pattern.session_reset.after_records=2000",
    )
    rows = table_rows(local_cluster, result, 16)
    dropped = [r for r in result["records"] if r["class"] == "dropped"]

    assert any("session reset" in note for note in result["notes"])
    assert result["exit_code"] == ExitCode.EXPECTATIONS_UNMET
    assert dropped and all(r["silent"] for r in dropped)
    assert all((r["key"]["bucket"], r["key"]["key"]) not in rows for r in dropped)
    assert result["counts"]["present"] == len(rows)
    assert result["counts"]["ok"] + result["counts"]["recovered"] == len(rows)


def test_duplicate_append_lists_every_record_its_retry_appended_twice(
    local_cluster: Any, tmp_path: Path
) -> None:
    result = run("duplicate-append", tmp_path)
    rows = table_rows(local_cluster, result, 16)
    duplicated = {r["record_id"]: r for r in result["records"] if r["class"] == "duplicated"}
    listed = {r["record_id"] for r in result["records"]}

    assert result["exit_code"] == ExitCode.EXPECTATIONS_UNMET
    assert duplicated, "writes applied, then answered with WriteTimeout and retried, land twice"
    for rid, r in duplicated.items():
        row = rows[(r["key"]["bucket"], r["key"]["key"])]
        assert row.record_id == rid
        assert 2 <= row.applied.count(rid) <= r["attempts"]  # the driver never retried on its own
    appended_twice = {row.record_id for row in rows.values() if row.applied.count(row.record_id) > 1}
    assert appended_twice == set(duplicated)
    logged = app_logged_ids(tmp_path / "duplicate-append")
    assert {rid for rid, r in duplicated.items() if r["silent"]} == set(duplicated) & logged
    ok = [row for row in rows.values() if row.record_id not in listed]
    assert len(ok) == result["counts"]["ok"] > 0
    assert all(row.applied == [row.record_id] for row in ok)
