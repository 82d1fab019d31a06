"""The protocol injector against the real node: the driver raises what a real coordinator causes."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cassandra import OperationTimedOut, Unavailable, WriteTimeout
from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage, ServerError

from astrachaos.config.settings import Profile, load_profile
from astrachaos.driver.session import Connection, connect
from astrachaos.injectors.interface import ClientHooks, InjectorContext
from astrachaos.injectors.protocol import ProtocolInjector, ProtocolParams
from astrachaos.scenario import DriverOverrides
from tests.integration.raw import raw_session

pytestmark = pytest.mark.integration

KEYSPACE = "astrachaos_proxy_test"
TABLE = "protocol_rows"


@pytest.fixture
def local_profile(local_cluster: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Profile:
    """The built-in `local` profile pointed at the test cluster, at consistency ONE."""
    for name in list(os.environ):
        if name.startswith(("ASTRACHAOS_", "ASTRA_DB_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASTRACHAOS_CONTACT_POINTS", ",".join(local_cluster.contact_points))
    monkeypatch.setenv("ASTRACHAOS_PORT", str(local_cluster.port))
    monkeypatch.setenv("ASTRACHAOS_DRIVER__CONSISTENCY", "ONE")
    with raw_session(local_cluster.contact_points) as session:
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {KEYSPACE} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(f"CREATE TABLE IF NOT EXISTS {KEYSPACE}.{TABLE} (id uuid PRIMARY KEY, v text)")
    return load_profile("local").profile


def _injector(profile: Profile, cluster: Any, **params: Any) -> ProtocolInjector:
    context = InjectorContext(profile, cluster, ClientHooks(), random.Random(3), probability=1.0)
    return ProtocolInjector(ProtocolParams.model_validate(params), context)


@pytest.fixture
def through_proxy(local_profile: Profile, local_cluster: Any) -> Iterator[Any]:
    """Open (injector, connection) pairs through the proxy; everything closed afterwards."""
    opened: list[tuple[ProtocolInjector, Connection]] = []

    def open_(protocol_version: int = 5, timeout_ms: int = 10_000, **params: Any) -> Any:
        profile = local_profile.with_driver_overrides(
            DriverOverrides(protocol_version=protocol_version, request_timeout_ms=timeout_ms)
        )
        injector = _injector(profile, local_cluster, table=TABLE, keyspace=KEYSPACE, **params)
        overrides = injector.prepare()
        assert overrides is not None
        connection = connect(
            profile,
            contact_points=overrides.contact_points,
            port=overrides.port,
            address_translator=overrides.address_translator,
        )
        opened.append((injector, connection))
        return injector, connection

    yield open_
    for injector, connection in opened:
        connection.close()
        injector.close()


def _row_present(cluster: Any, key: uuid.UUID) -> bool:
    with raw_session(cluster.contact_points) as session:
        return session.execute(f"SELECT v FROM {KEYSPACE}.{TABLE} WHERE id = %s", (key,)).one() is not None


@pytest.mark.parametrize("version", [4, 5])
def test_a_round_trip_through_the_proxy_reaches_the_node(through_proxy: Any, version: int) -> None:
    _, connection = through_proxy(protocol_version=version)
    hosts = [str(h.endpoint) for h in connection.cluster.metadata.all_hosts()]
    assert hosts == ["127.0.0.101:9042"]
    row = connection.session.execute("SELECT release_version FROM system.local").one()
    assert row.release_version.startswith("5.")


@pytest.mark.parametrize("version", [4, 5])
def test_write_timeout_frames_raise_the_drivers_write_timeout(
    through_proxy: Any, local_cluster: Any, version: int
) -> None:
    injector, connection = through_proxy(protocol_version=version, error="write_timeout")
    session = connection.session
    insert = session.prepare(f"INSERT INTO {KEYSPACE}.{TABLE} (id, v) VALUES (?, ?)")
    injector.apply()
    key = uuid.uuid4()
    with pytest.raises(WriteTimeout):
        session.execute(insert, (key, "prepared"))  # EXECUTE, mapped through its PREPARE
    with pytest.raises(WriteTimeout):
        session.execute(f"INSERT INTO {KEYSPACE}.{TABLE} (id, v) VALUES (%s, 'q')", (key,))
    assert session.execute(f"SELECT * FROM {KEYSPACE}.{TABLE} LIMIT 1") is not None  # reads pass
    assert not _row_present(local_cluster, key)  # never forwarded
    injector.rollback()
    session.execute(insert, (key, "after rollback"))
    assert _row_present(local_cluster, key)
    stats = injector.stats()
    assert stats.injected == 2 and stats.by_type == {"write_timeout": 2}


def test_unavailable_frames_raise_the_drivers_unavailable(through_proxy: Any) -> None:
    injector, connection = through_proxy(error="unavailable")
    injector.apply()
    with pytest.raises(Unavailable) as raised:
        connection.session.execute(
            f"INSERT INTO {KEYSPACE}.{TABLE} (id, v) VALUES (%s, 'u')", (uuid.uuid4(),)
        )
    assert (raised.value.required_replicas, raised.value.alive_replicas) == (1, 0)


def test_overloaded_frames_raise_overloaded_after_the_default_retry(through_proxy: Any) -> None:
    # The default RetryPolicy moves an Overloaded request to the next host; with one node there
    # is none, and the driver 3.30 raises the server's error itself (not NoHostAvailable).
    injector, connection = through_proxy(error="overloaded")
    injector.apply()
    with pytest.raises(OverloadedErrorMessage):
        connection.session.execute(
            f"INSERT INTO {KEYSPACE}.{TABLE} (id, v) VALUES (%s, 'o')", (uuid.uuid4(),)
        )
    assert injector.stats().by_type == {"overloaded": 1}


@pytest.mark.parametrize(
    ("error", "raised"), [("server_error", ServerError), ("is_bootstrapping", IsBootstrappingErrorMessage)]
)
def test_server_error_and_is_bootstrapping_reach_the_caller(
    through_proxy: Any, error: str, raised: type[Exception]
) -> None:
    injector, connection = through_proxy(error=error)
    injector.apply()
    with pytest.raises(raised):
        connection.session.execute(
            f"INSERT INTO {KEYSPACE}.{TABLE} (id, v) VALUES (%s, 'e')", (uuid.uuid4(),)
        )


def test_forward_then_drop_times_out_the_client_but_the_row_is_written(
    through_proxy: Any, local_cluster: Any
) -> None:
    injector, connection = through_proxy(mode="forward-then-drop", timeout_ms=1000)
    insert = connection.session.prepare(f"INSERT INTO {KEYSPACE}.{TABLE} (id, v) VALUES (?, ?)")
    injector.apply()
    key = uuid.uuid4()
    with pytest.raises(OperationTimedOut):
        connection.session.execute(insert, (key, "applied"))
    assert _row_present(local_cluster, key)
    assert injector.stats().by_type == {"dropped": 1}


def test_forward_then_timeout_reports_write_timeout_for_an_applied_write(
    through_proxy: Any, local_cluster: Any
) -> None:
    injector, connection = through_proxy(mode="forward-then-timeout")
    injector.apply()
    key = uuid.uuid4()
    with pytest.raises(WriteTimeout):
        connection.session.execute(f"INSERT INTO {KEYSPACE}.{TABLE} (id, v) VALUES (%s, 't')", (key,))
    assert _row_present(local_cluster, key)
