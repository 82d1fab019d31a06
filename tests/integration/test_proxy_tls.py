"""A TLS client through `astrachaos proxy --tcp`: bytes pass untouched, network faults apply.

The TLS endpoint is the Astra stand-in's SNI proxy (mutual TLS, routes by server name) in front of
the shared local node: the Python driver speaks CQL over TLS, with a client certificate and an
SNI name, through the fault proxy, as an application in front of Astra would. The handshake
succeeding (certificate checked against the SNI name, client certificate required) and the SNI
name arriving intact prove the proxy did not touch the bytes.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import Cluster
from cassandra.policies import ConstantReconnectionPolicy, RoundRobinPolicy

from astrachaos.local import LocalCluster
from astrachaos.wrap.chaos import wait_usable
from tests.astra_standin.certs import StandinPki, make_pki
from tests.astra_standin.sniproxy import SniProxy
from tests.integration.proxy_harness import running_proxy

NAME = "node-a.test"
KS = "proxy_tls"
NOTHING_UNREAD = {"connections": 0, "refused": 0, "frames": 0, "requests": 0}


@pytest.fixture
def tls_front(local_cluster: LocalCluster, tmp_path: Path) -> Iterator[tuple[SniProxy, StandinPki, Path]]:
    """A mutual-TLS SNI proxy on loopback routing NAME to the local node."""
    pki = make_pki("127.0.0.1", [NAME])
    ca, cert, key = pki.write_server_files(tmp_path / "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(ca)
    context.verify_mode = ssl.CERT_REQUIRED
    host, port = local_cluster.contact_points[0], 9042
    front = SniProxy("127.0.0.1", context, {NAME: (host, port)})
    front.start()
    try:
        yield front, pki, tmp_path
    finally:
        front.stop()


def _tls_cluster(pki: StandinPki, directory: Path, host: str, port: int) -> Any:
    (directory / "client.crt").write_bytes(pki.client.cert)
    (directory / "client.key").write_bytes(pki.client.key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the certificate and its name
    context.load_verify_locations(cadata=pki.ca.cert.decode())
    context.load_cert_chain(directory / "client.crt", directory / "client.key")
    return Cluster([host], port=port, ssl_context=context, ssl_options={"server_hostname": NAME},
                   load_balancing_policy=RoundRobinPolicy(), compression=False,
                   reconnection_policy=ConstantReconnectionPolicy(0.5, None))  # fmt: skip


def test_a_mutual_tls_client_passes_tcp_mode_untouched_and_network_faults_apply(
    tls_front: tuple[SniProxy, StandinPki, Path],
) -> None:
    front, pki, directory = tls_front
    with running_proxy(["--tcp", "--upstream", f"127.0.0.1:{front.port}"]) as proxy:
        host, port = proxy.listen[0]
        cluster = _tls_cluster(pki, directory, host, port)
        session = cluster.connect()
        session.execute(f"CREATE KEYSPACE IF NOT EXISTS {KS} WITH replication ="
                        " {'class': 'SimpleStrategy', 'replication_factor': 1}")  # fmt: skip
        session.execute(f"CREATE TABLE IF NOT EXISTS {KS}.kv (k int PRIMARY KEY, v text)")
        insert = session.prepare(f"INSERT INTO {KS}.kv (k, v) VALUES (?, ?)")
        for k in range(10):
            session.execute(insert, (k, "over tls"))
        assert session.execute(f"SELECT v FROM {KS}.kv WHERE k = 9").one().v == "over tls"

        slow = {"label": "slow", "name": "network", "params": {"toxic": "latency", "latency_ms": 400}}
        assert proxy.ctl("add", json.dumps(slow)).returncode == 0
        started = time.monotonic()
        session.execute("SELECT release_version FROM system.local")
        assert time.monotonic() - started >= 0.4  # a lower bound only: the answer waited for the toxic
        assert proxy.ctl("remove", "slow").returncode == 0

        down = {"label": "down", "name": "network", "params": {"toxic": "down"}}
        assert proxy.ctl("add", json.dumps(down)).returncode == 0
        with pytest.raises(Exception):  # noqa: B017 - whichever the driver raises once its link is cut
            session.execute("SELECT release_version FROM system.local")
        assert proxy.ctl("remove", "down").returncode == 0
        wait_usable(session, 90)  # the driver reconnects through the proxy, over TLS again

        protocol = {"name": "protocol", "params": {"mode": "error", "error": "overloaded"}}
        refused = proxy.ctl("add", json.dumps(protocol))
        assert refused.returncode != 0 and "--tcp" in refused.stdout + refused.stderr
        stats = json.loads(proxy.ctl("stats").stdout)
        cluster.shutdown()
        assert proxy.interrupt() == 130
    assert stats["mode"] == "tcp"
    assert stats["toxics_hit"]["latency"] >= 1 and stats["toxics_hit"]["down"] == 1
    assert stats["not_followed"]["connections"] == stats["connections"] >= 2  # unread, by design
    assert front.seen and set(front.seen) == {NAME}  # every handshake carried the SNI name, intact


def test_a_tls_client_through_the_cql_proxy_is_counted_as_not_followed(
    tls_front: tuple[SniProxy, StandinPki, Path],
) -> None:
    front, pki, directory = tls_front
    with running_proxy(["--upstream", f"127.0.0.1:{front.port}"]) as proxy:
        host, port = proxy.listen[0]
        cluster = _tls_cluster(pki, directory, host, port)
        cluster.connect().execute("SELECT release_version FROM system.local")
        stats = json.loads(proxy.ctl("stats").stdout)
        cluster.shutdown()
        assert proxy.interrupt() == 130
    assert stats["mode"] == "cql"
    assert stats["not_followed"]["connections"] >= 1 and stats["not_followed"] != NOTHING_UNREAD
    assert "run the proxy with --tcp" in "".join(proxy.output)
