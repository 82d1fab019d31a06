"""The write path under overload, and verification as an independent reader, on the real node."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from astrachaos.config.catalog import resolve
from astrachaos.config.loader import load_scenario
from astrachaos.errors import EnvironmentProblem, ExitCode, Inconclusive
from astrachaos.run.reverify import reverify
from astrachaos.run.runner import Runner
from astrachaos.verify import connection as verify_connection

pytestmark = pytest.mark.integration
OVERLOAD_RECORDS = 150_000  # fire-and-forget at 5,000/s, more than this machine takes with faults


def test_a_fire_and_forget_overload_keeps_its_host_and_ends_in_a_verdict(
    local_cluster: Any, tmp_path: Path
) -> None:
    scenario = load_scenario(
        resolve("flaky-network"),
        [f"workload.records={OVERLOAD_RECORDS}", "schema.table=overload_records"],
        random_seed=3,
    )
    runner = Runner(scenario, tmp_path / "run")
    result = runner.run().to_json_dict()
    counts = result["counts"]
    assert result["exit_code"] == ExitCode.EXPECTATIONS_UNMET  # silent loss, as the scenario shows
    assert counts["records"] == OVERLOAD_RECORDS
    classified = sum(counts[c] for c in ("ok", "recovered", "failed", "indeterminate", "dropped", "lost"))
    assert classified == OVERLOAD_RECORDS and not result["verification"]["unread_buckets"]
    assert result["driver"]["host_downs"] == 0, result["notes"]
    # The queue overflowed and its requests timed out in bulk; nothing was left in flight.
    assert result["throttler"]["in_flight"] == 0 and result["throttler"]["queued"] == 0
    assert not [t for t in threading.enumerate() if t.name == "astrachaos-completions"]


def test_verification_that_cannot_reach_the_database_is_inconclusive_and_verifiable_later(
    local_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario(
        resolve("basic-chaos"), ["workload.records=2000", "schema.table=reverify_records"], random_seed=5
    )
    scenario = scenario.model_copy(update={"injectors": ()})

    def unreachable(profile: Any, **options: Any) -> Any:
        raise EnvironmentProblem("cannot connect to 127.0.0.1 port 9042: the database went away")

    monkeypatch.setattr(verify_connection, "connect", unreachable)
    monkeypatch.setattr(verify_connection, "WAIT_S", 1.5)
    runner = Runner(scenario, tmp_path / "run")
    with pytest.raises(Inconclusive) as raised:
        runner.run()
    assert raised.value.exit_code == ExitCode.INCONCLUSIVE
    assert "verification cannot reach the database" in raised.value.message
    assert str(tmp_path / "run") in raised.value.message and "astrachaos verify" in str(raised.value)
    assert (tmp_path / "run" / "ledger.sqlite").is_file()
    assert not (tmp_path / "run" / "result.json").exists()

    monkeypatch.undo()  # the database answers again
    result = reverify(tmp_path / "run")
    assert result.exit_code == ExitCode.OK
    assert result.verification.acknowledged == result.verification.records == 2000
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["counts"]["ok"] == 2000


def test_two_writer_processes_make_one_run_with_one_ledger_and_one_verdict(
    local_cluster: Any, tmp_path: Path
) -> None:
    from tests.integration.raw import raw_session, rows_of_run

    scenario = load_scenario(
        resolve("basic-chaos"),
        ["workload.records=6000", "workload.processes=2", "schema.table=process_records"],
        random_seed=11,
    )
    result = Runner(scenario, tmp_path / "run").run().to_json_dict()
    counts = result["counts"]
    assert result["exit_code"] == ExitCode.OK, result["notes"]
    assert counts["records"] == 6000 and counts["ok"] + counts["failed"] == 6000
    (client,) = result["injectors"]  # counted in both processes, reported once
    assert client["requests"] == 6000 and client["injected"] == counts["failed"]
    assert not list((tmp_path / "run").glob("ledger-p*")), "segments are merged into ledger.sqlite"
    writers = {json.loads(line)["writer"] for line in (tmp_path / "run" / "app.log.jsonl").open()}
    assert writers == {0, 1}  # one application log, both processes' lines whole
    with raw_session(local_cluster.contact_points) as session:
        rows = rows_of_run(session, f"{result['keyspace']}.{result['table']}", result["run_id"], 16)
    assert len(rows) == counts["ok"]


def test_a_host_the_driver_marks_down_is_reported_with_its_times(local_cluster: Any, tmp_path: Path) -> None:
    from astrachaos.scenario import Scenario

    scenario = Scenario.model_validate(
        {
            "name": "host-down",
            "seed": 13,
            "schema": {"table": "host_down_records"},
            "workload": {"writers": 1, "records": 4000, "batch_size": 50, "rate": 500},
            "pattern": {"name": "careful", "max_attempts": 10},
            "injectors": [
                {"name": "network", "params": {"toxic": "down"}, "schedule": {"start_s": 1, "duration_s": 3}}
            ],
        }
    )
    runner = Runner(scenario, tmp_path / "run")
    result = runner.run().to_json_dict()
    assert result["driver"]["host_downs"] >= 1
    note = next(n for n in result["notes"] if "marked down by the driver at" in n)
    # The driver's own view: the address it connects to (here the node's proxy, on 127.0.0.0/8).
    assert re.fullmatch(
        r"primary: 127(\.\d+){3} marked down by the driver at \d+\.\d s, back at \d+\.\d s", note
    )
    from astrachaos.ledger.writer import Ledger

    with Ledger.open(tmp_path / "run" / "ledger.sqlite") as ledger:
        kinds = {w.kind for w in ledger.fault_windows()}
    assert "host-down" in kinds  # on the run's timeline, next to the network fault
