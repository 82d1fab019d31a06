"""`astrachaos proxy` as a long-running process: the control API's contract, SIGTERM and --duration
exits (faults rolled back, nothing listening), and upstream nodes taken from a profile."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from cassandra.cluster import Cluster
from cassandra.policies import RoundRobinPolicy

from astrachaos.local import LocalCluster
from tests.integration.proxy_harness import astrachaos, free_port, listening, running_proxy

LATENCY = {"label": "slow", "name": "network", "params": {"toxic": "latency", "latency_ms": 50}}


def _http(api: str, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(f"http://{api}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_control_api_answers_its_contract(local_cluster: LocalCluster) -> None:
    with running_proxy(["--upstream", "127.0.0.1:9042"]) as proxy:
        api = proxy.api
        assert _http(api, "GET", "/faults") == (200, [])
        assert _http(api, "POST", "/faults", json.dumps(LATENCY).encode()) == (201, {"label": "slow"})
        status, listed = _http(api, "GET", "/faults")
        assert status == 200 and [(f["label"], f["kind"], f["applied"]) for f in listed] == [
            ("slow", "network", True)
        ]
        assert _http(api, "POST", "/faults", json.dumps(LATENCY).encode())[0] == 400  # label taken
        assert _http(api, "POST", "/faults", b"{not json")[0] == 400
        node_fault = {"name": "node", "params": {"action": "kill"}}
        status, refused = _http(api, "POST", "/faults", json.dumps(node_fault).encode())
        assert status == 400 and "kind" in refused["error"]
        assert _http(api, "DELETE", "/faults/nothing-here")[0] == 404
        assert _http(api, "GET", "/nowhere")[0] == 404
        assert _http(api, "DELETE", "/faults/slow") == (200, {"removed": "slow", "rolled_back": True})
        assert _http(api, "POST", "/faults", json.dumps(LATENCY).encode())[0] == 201
        assert _http(api, "POST", "/reset") == (200, {"removed": ["slow"]})
        status, stats = _http(api, "GET", "/stats")
        assert status == 200 and stats["mode"] == "cql" and "not_followed" in stats
        assert proxy.interrupt() == 130


def test_sigterm_exits_130_with_faults_rolled_back_and_nothing_listening(local_cluster: LocalCluster) -> None:
    with running_proxy(["--upstream", "127.0.0.1:9042"]) as proxy:
        assert proxy.ctl("add", json.dumps(LATENCY)).returncode == 0
        proxy.process.send_signal(signal.SIGTERM)
        assert proxy.process.wait(timeout=60) == 130
        for host_port in proxy.listen:
            assert not listening(*host_port)
        assert not listening("127.0.0.1", int(proxy.api.rsplit(":", 1)[1]))
    deadline = time.monotonic() + 30  # the harness drains the output in a thread of its own
    while not any("interrupted: faults rolled back" in line for line in proxy.output):
        assert time.monotonic() < deadline, "".join(proxy.output)
        time.sleep(0.1)


def test_duration_stops_the_proxy_with_exit_0(local_cluster: LocalCluster, tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text(yaml.safe_dump({"injectors": [LATENCY]}))
    port, api = free_port(), free_port()
    done = subprocess.run(
        [*astrachaos(), "proxy", "--upstream", "127.0.0.1:9042", "--faults", str(faults), "--duration", "1",
         "--listen", f"127.0.0.1:{port}", "--api", f"127.0.0.1:{api}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stopped: faults rolled back, nothing listening" in done.stdout
    assert not listening("127.0.0.1", port) and not listening("127.0.0.1", api)


def test_profile_gives_the_upstream_nodes(local_cluster: LocalCluster) -> None:
    with running_proxy(["--profile", "local"]) as proxy:
        assert [f"{n}" for n in proxy.output if n.startswith("listening")] == [
            f"listening {proxy.listen[0][0]}:{proxy.listen[0][1]} -> {local_cluster.contact_points[0]}:9042\n"
        ]
        host, port = proxy.listen[0]
        cluster = Cluster([host], port=port, load_balancing_policy=RoundRobinPolicy(), compression=False)
        try:
            assert cluster.connect().execute("SELECT release_version FROM system.local").one() is not None
        finally:
            cluster.shutdown()
        assert proxy.interrupt() == 130


def test_the_proxy_under_test_is_the_one_users_get(local_cluster: LocalCluster) -> None:
    """The proxy tests run the wheel's compiled hot path (the checkout's source: ASTRACHAOS_TEST_SOURCE=1)."""
    expected = "pure Python" if os.environ.get("ASTRACHAOS_TEST_SOURCE") else "compiled (mypyc)"
    with running_proxy(["--upstream", "127.0.0.1:9042"]) as proxy:
        assert f"hot path: {expected}\n" in proxy.output, proxy.output
        assert proxy.interrupt() == 130
