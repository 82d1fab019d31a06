"""`astrachaos reconcile` against real tables in keyspace reconcile_test, planted with the raw driver."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cassandra.concurrent import execute_concurrent_with_args

from astrachaos.local import LocalCluster
from astrachaos.reconcile.result import Mode
from astrachaos.reconcile.sides import open_sides
from astrachaos.reconcile.tables import TableOptions, compare_tables
from astrachaos.reconcile.tokens import split_ring
from tests.integration.raw import raw_session

KS = "reconcile_test"
WHERE = " WHERE tenant=%s AND region=%s AND ts=%s AND id=%s"
ROWS = 1500
COLUMNS = (
    "tenant text, region int, ts timestamp, id uuid, name text, amount decimal, tags set<text>,"
    " items list<int>, attrs map<text, int>, data blob, frozen_names frozen<list<text>>"
)
PK = "PRIMARY KEY ((tenant, region), ts, id)"
INSERT = (
    "INSERT INTO {t} (tenant, region, ts, id, name, amount, tags, items, attrs, data, frozen_names)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Runs the real CLI; registers `reconcile` whether or not astrachaos/cli/__init__.py does yet.
_CLI = (
    "import astrachaos.cli as c\n"
    "from astrachaos.cli import reconcile as r\n"
    "base = c._register\n"
    "def both():\n"
    "    base()\n"
    "    if not any(x.name == 'reconcile' for x in c.app.registered_commands): r.register(c.app)\n"
    "c._register = both\n"
    "c.main()\n"
)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`astrachaos ARGS` in a child process, output captured."""
    return subprocess.run([sys.executable, "-c", _CLI, *args], capture_output=True, text=True, timeout=600)


def row_values(i: int) -> tuple[Any, ...]:
    """Row i: every column type, text with quotes, newlines and non-ASCII."""
    return (
        f"tenant-{i % 7} 'quoted' \"ü\"",
        i % 3,
        dt.datetime(2024, 1, 1) + dt.timedelta(milliseconds=i * 1001),
        uuid.UUID(int=i * 7919 + 1),
        f"naïve café {i} — 'x'\n\"y\"",
        decimal.Decimal(f"{i}.{i % 100:02d}"),
        {f"t{i % 5}", "ß"},
        [i, i + 1, i],
        {"a": i, "ключ": -i},
        bytes([i % 256, 0, 255]),
        [f"n{i}", "日本"],
    )


@pytest.fixture(scope="module")
def session(local_cluster: LocalCluster) -> Iterator[Any]:
    """A raw driver session; keyspace reconcile_test created, dropped at the end."""
    with raw_session(list(local_cluster.contact_points)) as raw:
        raw.execute(f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication = "
                    "{'class': 'SimpleStrategy', 'replication_factor': 1}")  # fmt: skip
        yield raw
        raw.execute(f"DROP KEYSPACE IF EXISTS {KS}")


def make_table(session: Any, name: str, rows: int = ROWS, stamp: int | None = None) -> str:
    """Create `name` (dropped first) and fill it with rows 0..rows-1 through the raw driver."""
    table = f"{KS}.{name}"
    session.execute(f"DROP TABLE IF EXISTS {table}")
    session.execute(f"CREATE TABLE {table} ({COLUMNS}, {PK})")
    using = "" if stamp is None else f" USING TIMESTAMP {stamp}"
    prepared = session.prepare(INSERT.format(t=table) + using)
    execute_concurrent_with_args(session, prepared, [row_values(i) for i in range(rows)], concurrency=64)
    return table


def key_of(i: int) -> dict[str, Any]:
    """Row i's key as result.json encodes it."""
    v = row_values(i)
    return {
        "tenant": v[0],
        "region": v[1],
        "ts": v[2].isoformat(timespec="milliseconds") + "Z",
        "id": str(v[3]),
    }


@pytest.fixture(scope="module")
def planted(session: Any) -> tuple[str, str]:
    """src and dst equal except: 3 rows deleted in dst, 3 changed in dst, 2 extra in dst."""
    src, dst = make_table(session, "src"), make_table(session, "dst")
    for i in (5, 700, 1499):
        v = row_values(i)
        session.execute(f"DELETE FROM {dst} " + WHERE, v[:4])
    v = row_values(10)
    session.execute(f"UPDATE {dst} SET name=%s " + WHERE,
                    ("changed 'ü' \"q\"", *v[:4]))  # fmt: skip
    v = row_values(20)
    session.execute(f"UPDATE {dst} SET amount=%s, attrs=attrs+%s " + WHERE,
                    (decimal.Decimal("-0.001"), {"new": 1}, *v[:4]))  # fmt: skip
    v = row_values(30)
    session.execute(f"UPDATE {dst} SET tags=tags+%s " + WHERE,
                    ({"extra"}, *v[:4]))  # fmt: skip
    prepared = session.prepare(INSERT.format(t=dst))
    for i in (ROWS + 1, ROWS + 2):
        session.execute(prepared, row_values(i))
    return src, dst


def compare(src: str, dst: str, out: Path, **options: Any) -> Any:
    """compare_tables through the local profile."""
    with open_sides([src, dst], "local") as (s, t):
        return compare_tables(s, t, TableOptions(**options), out)


def test_planted_deletions_changes_and_extras_are_found_exactly(
    planted: tuple[str, str], tmp_path: Path
) -> None:
    result = compare(*planted, tmp_path, splits=16, concurrency=4)
    assert result.mode is Mode.TABLES
    assert sorted(map(json.dumps, result.missing_in_target)) == sorted(
        json.dumps(key_of(i)) for i in (5, 700, 1499)
    )
    assert sorted(map(json.dumps, result.missing_in_source)) == sorted(
        json.dumps(key_of(i)) for i in (ROWS + 1, ROWS + 2)
    )
    differing = {json.dumps(d.key): {c.column: c for c in d.columns} for d in result.differing}
    assert set(differing) == {json.dumps(key_of(i)) for i in (10, 20, 30)}
    name = differing[json.dumps(key_of(10))]["name"]
    assert (name.source, name.target) == (row_values(10)[4], "changed 'ü' \"q\"")
    money = differing[json.dumps(key_of(20))]
    assert set(money) == {"amount", "attrs"}
    assert (money["amount"].source, money["amount"].target) == ("20.20", "-0.001")
    assert money["attrs"].target == {"a": 20, "ключ": -20, "new": 1}
    assert differing[json.dumps(key_of(30))]["tags"].target == ["extra", "t0", "ß"]
    assert result.counts["source_rows"] == ROWS and result.counts["target_rows"] == ROWS - 3 + 2
    assert result.counts["equal"] == ROWS - 6
    assert int(result.exit_code) == 1


def test_a_table_compared_with_itself_reports_nothing(planted: tuple[str, str], tmp_path: Path) -> None:
    result = compare(planted[0], planted[0], tmp_path, splits=8)
    assert result.differences == 0 and not result.in_flight and int(result.exit_code) == 0
    assert result.counts["equal"] == ROWS


def test_token_ranges_cover_every_row_once(planted: tuple[str, str], session: Any, tmp_path: Path) -> None:
    raw_count = sum(1 for _ in session.execute(f"SELECT id FROM {planted[0]}"))
    for splits in (1, 7, 64):
        result = compare(planted[0], planted[0], tmp_path / str(splits), splits=splits)
        assert result.counts["source_rows"] == raw_count == ROWS
    lines = (tmp_path / "7" / "checkpoint.jsonl").read_text().splitlines()
    per_range = [json.loads(line) for line in lines[1:]]
    assert len(per_range) == 7 and sum(r["source_rows"] for r in per_range) == ROWS
    assert sorted(tuple(r["range"]) for r in per_range) == [tuple(r.to_json()) for r in split_ring(7)]


def test_rows_written_during_the_scan_are_in_flight_not_differences(session: Any, tmp_path: Path) -> None:
    src, dst = make_table(session, "fresh_src", 50), make_table(session, "fresh_dst", 50)
    v = row_values(3)
    session.execute(f"DELETE FROM {dst} " + WHERE, v[:4])
    result = compare(src, dst, tmp_path, splits=4, grace_s=3600)  # everything is "recent"
    assert result.differences == 0
    assert [(dict(f.key), f.kind) for f in result.in_flight] == [(key_of(3), "missing_in_target")]


def test_writetime_tolerance_reports_equal_values_written_far_apart(session: Any, tmp_path: Path) -> None:
    base = 1_000_000_000_000_000  # 2001, in microseconds
    src, dst = make_table(session, "wt_src", 20, base), make_table(session, "wt_dst", 20, base)
    v = row_values(4)
    session.execute(f"UPDATE {dst} USING TIMESTAMP %s SET name=%s " + WHERE,
                    (base + 1_001_000, v[4], *v[:4]))  # fmt: skip
    session.execute(
        f"UPDATE {dst} USING TIMESTAMP %s SET name=%s " + WHERE,
        (base + 999_000, row_values(5)[4], *row_values(5)[:4]),
    )  # within tolerance
    assert compare(src, dst, tmp_path / "a", splits=2).differences == 0
    result = compare(src, dst, tmp_path / "b", splits=2, writetime_tolerance_ms=1000)
    assert [dict(d.key) for d in result.differing] == [key_of(4)]
    assert result.differing[0].columns[0].target_writetime == base + 1_001_000


def test_resume_skips_completed_ranges_and_keeps_their_findings(
    planted: tuple[str, str], tmp_path: Path
) -> None:
    full = compare(*planted, tmp_path, splits=8)
    lines = (tmp_path / "checkpoint.jsonl").read_text().splitlines()
    (tmp_path / "checkpoint.jsonl").write_text("\n".join(lines[:5]) + "\n")  # 4 ranges done
    resumed = compare(*planted, tmp_path, splits=8, resume=True)
    assert resumed.counts["ranges_resumed"] == 4
    assert resumed.to_json_dict()["missing_in_target"] == full.to_json_dict()["missing_in_target"]
    assert resumed.counts == {**full.counts, "ranges_resumed": 4}


def test_cli_repair_plan_then_repair_then_equal(session: Any, tmp_path: Path) -> None:
    src, dst = make_table(session, "rep_src", 300), make_table(session, "rep_dst", 300)
    session.execute(session.prepare(INSERT.format(t=src)), row_values(500))  # only in the source
    session.execute(
        session.prepare(INSERT.format(t=dst) + " USING TIMESTAMP 1234567 AND TTL 86400"), row_values(400)
    )
    args = ["reconcile", "--source", src, "--target", f"local:{dst}", "--splits", "8"]
    plan = cli(*args, "--out", str(tmp_path / "plan"), "--repair")
    assert plan.returncode == 1, plan.stderr
    assert json.loads((tmp_path / "plan" / "repair-plan.json").read_text())["counts"] == {
        "write_to_target": 1, "write_to_source": 1, "differing_not_repaired": 0}  # fmt: skip
    fixed = cli(*args, "--out", str(tmp_path / "fix"), "--repair", "--yes")
    assert fixed.returncode == 1 and "repaired: 1 rows to the target, 1 to the source" in fixed.stdout, (
        fixed.stdout
    )
    again = cli(*args, "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stdout
    back = session.execute(
        f"SELECT WRITETIME(name), TTL(name), WRITETIME(tags) FROM {src} " + WHERE,
        row_values(400)[:4],
    ).one()  # fmt: skip
    assert back[0] == 1234567 and 0 < back[1] <= 86400 and back[2] == [1234567, 1234567]
    data = json.loads((tmp_path / "again" / "result.json").read_text())
    assert data["exit_code"] == 0 and data["counts"]["missing_in_target"] == 0


def test_repair_keeps_the_original_writetime_so_a_newer_delete_still_wins(
    session: Any, tmp_path: Path
) -> None:
    src, dst = make_table(session, "del_src", 50), make_table(session, "del_dst", 50)
    v = row_values(7)
    session.execute(f"DELETE FROM {dst} " + WHERE, v[:4])
    args = ["reconcile", "--source", src, "--target", dst, "--splits", "4"]
    assert cli(*args, "--out", str(tmp_path / "fix"), "--repair", "--yes").returncode == 1
    again = cli(*args, "--out", str(tmp_path / "again"))
    assert again.returncode == 1  # the target's tombstone is newer than the row: never resurrected
    assert json.loads((tmp_path / "again" / "result.json").read_text())["missing_in_target"] == [key_of(7)]


def test_cli_differing_csv_and_exit_codes(planted: tuple[str, str], tmp_path: Path) -> None:
    done = cli("reconcile", "--source", planted[0], "--target", planted[1], "--out", str(tmp_path))
    assert done.returncode == 1, done.stderr
    rows = list(csv.DictReader((tmp_path / "differing.csv").open(encoding="utf-8")))
    assert {r["column"] for r in rows} == {"name", "amount", "attrs", "tags"}
    assert cli("reconcile", "--out", str(tmp_path)).returncode == 2
    missing_table = cli("reconcile", "--source", f"{KS}.nope", "--target", planted[1], "--out", str(tmp_path))
    assert missing_table.returncode == 4, missing_table.stderr


@pytest.mark.parametrize("kind", ["csv", "jsonl", "regex"])
def test_expected_keys_from_a_file(planted: tuple[str, str], tmp_path: Path, kind: str) -> None:
    wanted = [*range(0, 40), 5, 5, 700]  # 5 and 700 are absent from dst, 5 appears three times
    path = tmp_path / f"keys.{'csv' if kind == 'csv' else 'jsonl' if kind == 'jsonl' else 'log'}"
    extra: list[str] = []
    if kind == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["tenant", "region", "ts", "id"])
            writer.writerows([key_of(i)[c] for c in ("tenant", "region", "ts", "id")] for i in wanted)
    elif kind == "jsonl":
        lines = [{"level": "info", "row": key_of(i)} for i in wanted] + [
            {"level": "error", "row": key_of(9999)}
        ]
        path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
        extra = ["--key-path", "row", "--match", "level=info"]
    else:
        wanted = [i for i in wanted if i % 7 == 5 % 7]
        lines = [
            f"stored region={key_of(i)['region']} ts={key_of(i)['ts']} id={key_of(i)['id']}" for i in wanted
        ]
        path.write_text("\n".join(lines) + "\n")
        extra = ["--key-regex", r"region=(?P<region>\d+) ts=(?P<ts>\S+) id=(?P<id>[0-9a-f-]+)",
                 "--where", f"tenant={key_of(5)['tenant']}"]  # fmt: skip
    done = cli("reconcile", "--expected", str(path), "--table", planted[1], "--key", "tenant,region,ts,id",
               "--out", str(tmp_path / "out"), *extra)  # fmt: skip
    assert done.returncode == 1, done.stderr + done.stdout
    data = json.loads((tmp_path / "out" / "result.json").read_text())
    assert data["missing"] == [key_of(i) for i in sorted(set(wanted) & {5, 700}, key=wanted.index)]
    unique = len(set(wanted))
    assert data["counts"] == {"expected": len(wanted), "present": unique - len(data["missing"]),
                              "missing": len(data["missing"]),
                              "duplicates_in_expected": len(wanted) - unique}  # fmt: skip


def test_app_log_and_run_ledger_find_exactly_the_dropped_records(
    local_cluster: LocalCluster, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "astrachaos", "run", "queue-overflow", "--out", str(run_dir),
                    "--quiet", "--set", "workload.records=3000"], check=False, timeout=600)  # fmt: skip
    run = json.loads((run_dir / "result.json").read_text())
    absent = sorted((r["key"]["bucket"], r["key"]["key"]) for r in run["records"] if r["found"] == "absent")
    from_log = cli("reconcile", "--expected", str(run_dir / "app.log.jsonl"), "--table",
                   f"{run['keyspace']}.{run['table']}", "--key", "run_id,bucket,key", "--key-path", "keys",
                   "--match", "level=info", "--where", f"run_id={run['run_id']}",
                   "--out", str(tmp_path / "log"))  # fmt: skip
    assert from_log.returncode == (1 if absent else 0), from_log.stderr
    found = json.loads((tmp_path / "log" / "result.json").read_text())
    assert sorted((k["bucket"], k["key"]) for k in found["missing"]) == absent
    assert found["counts"]["present"] == run["counts"]["present"]
    unique_keys = run["counts"]["app_logged_success"]
    assert f"reconcile: {unique_keys}/{unique_keys} keys" in from_log.stderr  # progress in a log too
    from_run = cli("reconcile", "--run", str(run_dir), "--out", str(tmp_path / "ledger"))
    assert from_run.returncode == (1 if absent else 0)
    assert "reconcile: 16/16 buckets" in from_run.stderr
    ledger = json.loads((tmp_path / "ledger" / "result.json").read_text())
    assert sorted((k["bucket"], k["key"]) for k in ledger["missing"]) == absent
