"""The network injector against the real node: latency shows in round trips, down is NoHostAvailable."""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionShutdown

from astrachaos.config.settings import Profile, load_profile
from astrachaos.driver.session import Connection, connect
from astrachaos.injectors.interface import ClientHooks, InjectorContext
from astrachaos.injectors.network import NetworkInjector, NetworkParams
from astrachaos.scenario import DriverOverrides

pytestmark = pytest.mark.integration


@pytest.fixture
def local_profile(local_cluster: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Profile:
    """The built-in `local` profile pointed at the test cluster."""
    for name in list(os.environ):
        if name.startswith(("ASTRACHAOS_", "ASTRA_DB_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASTRACHAOS_CONTACT_POINTS", ",".join(local_cluster.contact_points))
    monkeypatch.setenv("ASTRACHAOS_PORT", str(local_cluster.port))
    return load_profile("local").profile.with_driver_overrides(DriverOverrides(request_timeout_ms=3000))


@pytest.fixture
def through_proxy(local_profile: Profile, local_cluster: Any) -> Iterator[Any]:
    """Open (injector, connection) pairs through the proxy; everything closed afterwards."""
    opened: list[tuple[NetworkInjector, Connection]] = []

    def open_(**params: Any) -> tuple[NetworkInjector, Connection]:
        context = InjectorContext(local_profile, local_cluster, ClientHooks(), random.Random(5), 1.0)
        injector = NetworkInjector(NetworkParams.model_validate(params), context)
        overrides = injector.prepare()
        assert overrides is not None
        connection = connect(
            local_profile,
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


def _median_round_trip_s(connection: Connection, count: int = 10) -> float:
    timings = []
    for _ in range(count):
        started = time.monotonic()
        connection.session.execute("SELECT release_version FROM system.local")
        timings.append(time.monotonic() - started)
    return statistics.median(timings)


def test_latency_raises_round_trips_by_about_its_delay(through_proxy: Any) -> None:
    injector, connection = through_proxy(toxic="latency", latency_ms=150, direction="downstream")
    baseline = _median_round_trip_s(connection)
    injector.apply()
    slowed = _median_round_trip_s(connection)
    injector.rollback()
    restored = _median_round_trip_s(connection)
    assert 0.14 <= slowed - baseline <= 0.3
    assert restored - baseline < 0.05
    assert injector.stats().injected >= 10


def test_down_gives_no_host_available_and_rollback_restores_service(through_proxy: Any) -> None:
    injector, connection = through_proxy(toxic="down")
    injector.apply()
    injector.apply()  # idempotent
    with pytest.raises(NoHostAvailable):
        for _ in range(20):  # the first attempts may still find the pool closing
            # The open connection may close under the query first: the host goes down next.
            with contextlib.suppress(ConnectionShutdown):
                connection.session.execute("SELECT release_version FROM system.local")
            time.sleep(0.1)
    injector.rollback()
    injector.rollback()  # idempotent
    deadline = time.monotonic() + 60
    while True:  # the driver reconnects on its reconnection schedule
        try:
            connection.session.execute("SELECT release_version FROM system.local")
            break
        except NoHostAvailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_a_blackhole_times_out_requests_and_rollback_releases_them(through_proxy: Any) -> None:
    from cassandra import OperationTimedOut

    injector, connection = through_proxy(toxic="timeout", direction="upstream")
    injector.apply()
    with pytest.raises(OperationTimedOut):
        connection.session.execute("SELECT release_version FROM system.local", timeout=1.0)
    injector.rollback()
    assert connection.session.execute("SELECT release_version FROM system.local").one() is not None
