"""The pytest plugin, run the way a user runs it (pytester, a subprocess), against the real node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from astrachaos.local import LocalCluster
from tests.integration.raw import raw_session

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).parents[2] / "examples" / "pytest" / "test_orders_under_chaos.py"


@pytest.fixture(scope="module")
def raw(local_cluster: LocalCluster) -> Iterator[Any]:
    with raw_session(list(local_cluster.contact_points)) as session:
        yield session


def results(out: Path) -> dict[str, dict[str, Any]]:
    """Each test's result.json under --astrachaos-out, by test directory name."""
    return {p.parent.name: json.loads(p.read_text()) for p in out.rglob("result.json")}


def claimed(out: Path) -> list[dict[str, Any]]:
    lines = [line for p in out.rglob("app-log.jsonl") for line in p.read_text().splitlines()]
    return [json.loads(line)["key"] for line in lines]


def row_exists(raw: Any, key: dict[str, Any]) -> bool:
    from cassandra import ConsistencyLevel
    from cassandra.query import SimpleStatement

    statement = SimpleStatement(
        "SELECT order_id FROM example_shop.orders WHERE customer = %s AND order_id = %s",
        consistency_level=ConsistencyLevel.ALL,
    )
    return raw.execute(statement, (key["customer"], int(key["order_id"]))).one() is not None


def test_the_copied_example_passes_careful_and_catches_the_submit_logging_uploader(
    pytester: pytest.Pytester, raw: Any
) -> None:
    pytester.makepyfile(test_orders=EXAMPLE.read_text())
    out = pytester.path / "chaos-out"
    run = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--astrachaos-out={out}", timeout=300)
    run.assert_outcomes(passed=1, xfailed=1)
    run.stdout.fnmatch_lines(
        [
            "*= astrachaos =*",
            "test_orders.py::test_careful_uploader_loses_nothing: captured *, lost 0, silent 0*result.json",
            "test_orders.py::test_submit_logging_uploader_loses_orders_silently: captured *silent [1-9]*",
        ]
    )
    by_test = results(out)
    careless = next(r for name, r in by_test.items() if "submit_logging" in name)
    careful = next(r for name, r in by_test.items() if "careful" in name)
    assert careful["exit_code"] == 0 and careless["exit_code"] == 1
    silent_ids = {(r["key"]["customer"], r["key"]["order_id"]) for r in careless["records"] if r["silent"]}
    assert silent_ids and len(silent_ids) == careless["counts"]["silent"]  # silent counts keys
    assert not any(row_exists(raw, {"customer": c, "order_id": n}) for c, n in silent_ids)  # really absent
    for key in claimed(out):  # every other claimed key is really there
        if (key["customer"], int(key["order_id"])) not in silent_ids:
            assert row_exists(raw, key), key


def test_lost_and_silent_keys_fail_the_test_with_the_keys_listed(pytester: pytest.Pytester) -> None:
    source = EXAMPLE.read_text().replace("@pytest.mark.xfail(", "@pytest.mark.skipif(False, ")
    pytester.makepyfile(test_orders=source)
    out = pytester.path / "o"
    run = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--astrachaos-out={out}", "-k", "submit_logging", timeout=300
    )
    run.assert_outcomes(failed=1)
    run.stdout.fnmatch_lines(
        [
            "*AssertionError: astrachaos: 0 acknowledged writes lost, * claimed writes silent*",
            "*failed silent example_shop.orders {'customer': 'customer-*', 'order_id': *} told error*",
        ]
    )


def test_marker_faults_and_the_profile_session(pytester: pytest.Pytester, raw: Any) -> None:
    pytester.makepyfile(
        test_marker="""
        import uuid
        import pytest

        DROP = [{"name": "client", "params": {"action": "drop"}, "schedule": {"probability": 1.0}}]

        @pytest.mark.chaos(faults=DROP)
        def test_every_write_dropped(astrachaos):
            plain = astrachaos.session  # from --astrachaos-profile
            plain.execute("CREATE KEYSPACE IF NOT EXISTS example_shop WITH replication ="
                          " {'class': 'SimpleStrategy', 'replication_factor': 1}")
            plain.execute("CREATE TABLE IF NOT EXISTS example_shop.orders (customer text,"
                          " order_id int, total_cents bigint, PRIMARY KEY (customer, order_id))")
            session = astrachaos.wrap()
            who = "marker-" + uuid.uuid4().hex[:8]
            insert = "INSERT INTO example_shop.orders (customer, order_id) VALUES (%s, %s)"
            for n in range(3):
                session.execute(insert, (who, n))
            assert astrachaos.chaos.stats().by_type == {"drop": 3}
        """
    )
    run = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--astrachaos-profile=local", f"--astrachaos-out={pytester.path / 'o'}",
        timeout=300,
    )  # fmt: skip
    run.assert_outcomes(failed=1)
    run.stdout.fnmatch_lines(
        ["*3 acknowledged writes lost*", "*lost example_shop.orders*told result fault drop*"]
    )
    (result,) = results(pytester.path / "o").values()
    assert result["counts"]["lost"] == 3
    assert not any(row_exists(raw, r["key"]) for r in result["records"])


def test_pytest_xdist_gives_each_worker_its_own_captures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_orders=EXAMPLE.read_text())
    out = pytester.path / "chaos-out"
    run = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", f"--astrachaos-out={out}", timeout=300
    )
    run.assert_outcomes(passed=1, xfailed=1)
    run.stdout.fnmatch_lines(["*= astrachaos =*", "*test_careful_uploader_loses_nothing: captured*"])
    paths = sorted(out.rglob("result.json"))
    assert len(paths) == 2
    assert len({p.parents[2] for p in paths}) == 1  # one session directory
    assert {p.parents[1].name for p in paths} <= {"gw0", "gw1"}  # a directory per worker
