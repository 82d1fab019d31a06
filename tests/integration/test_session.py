"""The session factory against the real local Cassandra: a CQL round trip, and a clear failure."""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from astrachaos.config.settings import Profile, load_profile
from astrachaos.driver.session import connect
from astrachaos.driver.throttle import RequestThrottlingError
from astrachaos.errors import EnvironmentProblem
from astrachaos.scenario import DriverOverrides

pytestmark = pytest.mark.integration

KEYSPACE = "astrachaos_session_test"


@pytest.fixture
def local_profile(local_cluster: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Profile:
    """The built-in `local` profile, pointed at the test cluster through the environment."""
    for name in list(os.environ):
        if name.startswith(("ASTRACHAOS_", "ASTRA_DB_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no ./configs or ./.env: the built-in profile
    monkeypatch.setenv("ASTRACHAOS_CONTACT_POINTS", ",".join(local_cluster.contact_points))
    monkeypatch.setenv("ASTRACHAOS_PORT", str(local_cluster.port))
    monkeypatch.setenv("ASTRACHAOS_DRIVER__CONSISTENCY", "ONE")
    return load_profile("local").profile


def test_a_write_through_the_throttled_session_reads_back(local_profile: Profile) -> None:
    with connect(local_profile) as connection:
        session = connection.session
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.round_trip (id uuid PRIMARY KEY, payload text)"
        )
        insert = session.prepare(f"INSERT INTO {KEYSPACE}.round_trip (id, payload) VALUES (?, ?)")
        rows = {uuid.uuid4(): f"payload {n}" for n in range(200)}
        futures = [connection.throttled.execute_async(insert, (k, v)) for k, v in rows.items()]
        for future in futures:
            future.result(timeout=30)

        select = session.prepare(f"SELECT payload FROM {KEYSPACE}.round_trip WHERE id = ?")
        for key, payload in rows.items():
            row = connection.throttled.execute(select, (key,)).one()
            assert row is not None and row.payload == payload

        stats = connection.throttled.stats()
        assert stats.admitted == 400
        assert (stats.in_flight, stats.queued, stats.throttled) == (0, 0, 0)


def test_the_profile_reaches_the_driver(local_profile: Profile) -> None:
    from cassandra import ConsistencyLevel
    from cassandra.cluster import EXEC_PROFILE_DEFAULT

    with connect(local_profile) as connection:
        default = connection.cluster.profile_manager.profiles[EXEC_PROFILE_DEFAULT]
        assert default.consistency_level == ConsistencyLevel.ONE
        assert default.request_timeout == pytest.approx(15.0)
        row = connection.throttled.execute("SELECT release_version FROM system.local").one()
        assert row.release_version.startswith("5.")


def test_a_small_throttler_refuses_a_burst_against_the_real_node(local_profile: Profile) -> None:
    profile = local_profile.with_driver_overrides(
        DriverOverrides(max_concurrent_requests=2, max_queue_size=3)
    )
    with connect(profile) as connection:
        futures = [connection.throttled.execute_async("SELECT now() FROM system.local") for _ in range(50)]
        errors = [f.exception(timeout=30) for f in futures]
        stats = connection.throttled.stats()
    refused = [e for e in errors if isinstance(e, RequestThrottlingError)]
    assert refused, "a burst of 50 against 2 slots and 3 queue places must overflow"
    assert all(e is None or isinstance(e, RequestThrottlingError) for e in errors)
    assert stats.admitted + stats.throttled == 50
    assert stats.throttled == len(refused)
    assert stats.max_in_flight_seen <= 2 and stats.max_queued_seen <= 3


def test_a_wrong_port_is_an_environment_problem_quickly(local_profile: Profile) -> None:
    profile = local_profile.model_copy(update={"port": 1})
    profile = profile.with_driver_overrides(DriverOverrides(connect_timeout_s=1))
    started = time.monotonic()
    with pytest.raises(EnvironmentProblem) as caught:
        connect(profile)
    assert time.monotonic() - started < 10
    assert "port 1" in str(caught.value)
    assert caught.value.hint


def test_a_missing_bundle_is_an_environment_problem_without_the_token(tmp_path: Path) -> None:
    token = "AstraCS:must-not-leak"
    profile = Profile.model_validate(
        {
            "name": "astra",
            "kind": "astra",
            "secure_connect_bundle": str(tmp_path / "missing.zip"),
            "token": token,
        }
    )
    with pytest.raises(EnvironmentProblem) as caught:
        connect(profile)
    assert "missing.zip" in str(caught.value)
    assert token not in str(caught.value)


def test_an_auth_failure_names_the_hosts_and_hides_the_password() -> None:
    from cassandra import AuthenticationFailed
    from cassandra.cluster import NoHostAvailable

    from astrachaos.driver.session import _problem

    secret = "pw-must-not-leak"
    profile = Profile.model_validate(
        {"name": "lab", "kind": "cassandra", "username": "app", "password": secret}
    )
    error = NoHostAvailable(
        "Unable to connect to any servers",
        {"127.0.0.1:9042": AuthenticationFailed(f"Bad credentials for app/{secret}")},
    )
    problem = _problem(profile, error)
    assert "authentication failed at 127.0.0.1 port 9042" in str(problem)
    assert secret not in str(problem)
    assert problem.hint is not None and "ASTRACHAOS_PASSWORD" in problem.hint


def test_answered_writes_are_freed_at_once_not_left_to_the_cycle_collector(local_profile: Profile) -> None:
    """A completed request lets go of the driver's future and its cancelled timer.

    With the collector off, a future still alive after its answer is one held by a reference
    cycle (or by the driver's timer queue): each such write costs the run a full collection later.
    """
    import gc

    from cassandra.cluster import ResponseFuture

    with connect(local_profile) as connection:
        session = connection.session
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.freed (id uuid PRIMARY KEY, payload text)")
        insert = session.prepare(f"INSERT INTO {KEYSPACE}.freed (id, payload) VALUES (?, ?)")
        errors: list[BaseException | None] = []
        all_answered = threading.Event()

        def answered(_response: Any, error: BaseException | None) -> None:
            errors.append(error)
            if len(errors) == 300:
                all_answered.set()

        gc.collect()
        gc.disable()
        try:
            for n in range(300):
                connection.throttled.submit(insert, answered, parameters=(uuid.uuid4(), f"p{n}"))
            assert all_answered.wait(60)
            assert connection.throttled.sync(60)  # the last completion has finished after its callback
            alive = sum(1 for o in gc.get_objects() if isinstance(o, ResponseFuture))
        finally:
            gc.enable()
    assert errors == [None] * 300
    assert alive < 10, f"{alive} answered futures are still alive"
