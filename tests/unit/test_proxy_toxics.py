"""Toxics on a local echo server through the proxy: each does what it says, and goes away."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from astrachaos.errors import EnvironmentProblem
from astrachaos.proxy.addresses import allocate_proxy_addresses
from astrachaos.proxy.server import ProxySet
from astrachaos.proxy.toxics import (
    Bandwidth,
    Direction,
    Down,
    Latency,
    LimitData,
    ResetPeer,
    Slicer,
    Timeout,
)


@pytest.fixture
def echo_port() -> Iterator[int]:
    """An echo server on 127.0.0.1 (one thread per connection)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := _recv(conn):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield port
    listener.close()


def _recv(conn: socket.socket) -> bytes:
    try:
        return conn.recv(65536)
    except OSError:
        return b""


@pytest.fixture
def proxy(echo_port: int) -> Iterator[ProxySet]:
    proxies = ProxySet(["127.0.0.1"], echo_port, random_seed=7)
    proxies.start()
    yield proxies
    proxies.close()


def _client(proxy: ProxySet) -> socket.socket:
    return socket.create_connection((proxy.contact_points[0], proxy.port), timeout=5)


def _round_trip(proxy: ProxySet, payload: bytes = b"ping") -> float:
    with _client(proxy) as conn:
        started = time.monotonic()
        conn.sendall(payload)
        received = b""
        while len(received) < len(payload):
            received += conn.recv(65536)
        assert received == payload
        return time.monotonic() - started


def test_the_proxy_listens_on_another_loopback_address(proxy: ProxySet) -> None:
    assert proxy.mapping == {"127.0.0.1": "127.0.0.101"}
    assert _round_trip(proxy) < 0.5
    assert proxy.counters().bytes_upstream == 4


def test_non_loopback_targets_are_refused() -> None:
    with pytest.raises(EnvironmentProblem, match="loopback"):
        allocate_proxy_addresses(["10.1.2.3"], 9042)
    with pytest.raises(EnvironmentProblem, match="loopback"):
        allocate_proxy_addresses(["db.example.com"], 9042)


def test_latency_adds_at_least_its_delay_and_goes_away(proxy: ProxySet) -> None:
    toxic = proxy.add_toxic(Latency(200), Direction.DOWNSTREAM, 1.0)
    assert _round_trip(proxy) >= 0.2
    proxy.remove_toxic(toxic)
    assert _round_trip(proxy) < 0.15


def test_latency_both_ways_adds_twice(proxy: ProxySet) -> None:
    proxy.add_toxic(Latency(100, jitter_ms=10), Direction.BOTH, 1.0)
    assert _round_trip(proxy) >= 0.18


def test_toxicity_zero_affects_no_connection(proxy: ProxySet) -> None:
    proxy.add_toxic(Latency(500), Direction.BOTH, 0.0)
    assert _round_trip(proxy) < 0.3


def test_limit_data_closes_after_n_bytes(proxy: ProxySet) -> None:
    proxy.add_toxic(LimitData(10), Direction.DOWNSTREAM, 1.0)
    with _client(proxy) as conn:
        conn.sendall(b"x" * 100)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    assert received == b"x" * 10


def test_reset_peer_gives_connection_reset(proxy: ProxySet) -> None:
    with _client(proxy) as conn:
        conn.sendall(b"hello")
        assert conn.recv(100) == b"hello"
        proxy.add_toxic(ResetPeer(), Direction.DOWNSTREAM, 1.0)
        time.sleep(0.1)
        with pytest.raises(ConnectionResetError):
            conn.sendall(b"again")
            conn.recv(100)
    assert proxy.counters().toxics_hit["reset_peer"] == 1


def test_down_refuses_connections_and_rollback_restores_them(proxy: ProxySet) -> None:
    existing = _client(proxy)
    existing.sendall(b"up")
    assert existing.recv(10) == b"up"  # accepted and relayed before the proxy goes down
    toxic = proxy.add_toxic(Down(), Direction.BOTH, 1.0)
    with pytest.raises(ConnectionRefusedError):
        _client(proxy)
    assert existing.recv(10) == b""  # the open connection was closed
    existing.close()
    proxy.remove_toxic(toxic)
    assert _round_trip(proxy) < 0.5


def test_timeout_holds_the_bytes_until_rollback(proxy: ProxySet) -> None:
    with _client(proxy) as conn:
        toxic = proxy.add_toxic(Timeout(), Direction.UPSTREAM, 1.0)
        conn.sendall(b"held")
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.recv(10)
        proxy.remove_toxic(toxic)
        conn.settimeout(5)
        assert conn.recv(10) == b"held"


def test_timeout_with_a_limit_closes_the_connection(proxy: ProxySet) -> None:
    proxy.add_toxic(Timeout(200), Direction.DOWNSTREAM, 1.0)
    with _client(proxy) as conn:
        conn.sendall(b"lost")
        started = time.monotonic()
        assert conn.recv(10) == b""
        assert time.monotonic() - started >= 0.15


def test_bandwidth_limits_throughput(proxy: ProxySet) -> None:
    proxy.add_toxic(Bandwidth(20_000), Direction.DOWNSTREAM, 1.0)
    assert _round_trip(proxy, b"y" * 10_000) >= 0.4


def test_slicer_delivers_everything_in_order_more_slowly(proxy: ProxySet) -> None:
    proxy.add_toxic(Slicer(average_size=10, size_variation=5, delay_us=2000), Direction.DOWNSTREAM, 1.0)
    payload = bytes(range(256)) * 4
    assert _round_trip(proxy, payload) >= 0.1  # ~100 pieces, 2 ms apart
