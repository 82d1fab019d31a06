"""`astrachaos local`: up, status, nodetool, node operations and down on a real Cassandra 5.0."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from astrachaos.errors import EnvironmentProblem
from astrachaos.local import ClusterSpec, LocalCluster, NodeState
from astrachaos.local.process import daemons_under

pytestmark = pytest.mark.integration

# Clusters of their own, never `default`: other sessions use that one.
UPDOWN = ["--name", "updown", "--first-address", "127.0.0.21", "--heap", "512"]


def wipe_if_present(name: str) -> None:
    """Stop and delete a test cluster if it exists."""
    if LocalCluster.saved_spec(name) is not None:
        LocalCluster.load(name).down(wipe=True)


def astrachaos(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "astrachaos", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def release_version(address: str, port: int = 9042) -> str:
    """Ask one node its version with the raw driver."""
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import WhiteListRoundRobinPolicy

    only = ExecutionProfile(load_balancing_policy=WhiteListRoundRobinPolicy([address]))
    cluster: Any = Cluster([address], port=port, execution_profiles={EXEC_PROFILE_DEFAULT: only})
    try:
        row = cluster.connect().execute("SELECT release_version FROM system.local").one()
        return str(row.release_version)
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def updown() -> Iterator[subprocess.CompletedProcess[str]]:
    """`local up` of a one-node cluster `updown` on 127.0.0.21; wiped at the end."""
    wipe_if_present("updown")
    try:
        yield astrachaos("local", "up", *UPDOWN)
    finally:
        wipe_if_present("updown")


def test_default_cluster_answers_cql(local_cluster: LocalCluster) -> None:
    assert local_cluster.contact_points == ["127.0.0.1"] and local_cluster.port == 9042
    assert release_version("127.0.0.1").startswith("5.0.")


def test_up_starts_a_node_that_answers_cql(updown: subprocess.CompletedProcess[str]) -> None:
    assert updown.returncode == 0, updown.stderr
    assert "Cluster updown is up: Apache Cassandra 5.0." in updown.stdout
    assert "clusters/updown/node1/data" in updown.stdout
    assert "clusters/updown/node1/logs" in updown.stdout
    assert release_version("127.0.0.21").startswith("5.0.")


def test_up_twice_says_already_up_and_does_nothing(
    updown: subprocess.CompletedProcess[str],
) -> None:
    pid = LocalCluster.load("updown").nodes[0].pid()
    again = astrachaos("local", "up", "--name", "updown")
    assert again.returncode == 0, again.stderr
    assert "already up" in again.stdout
    assert LocalCluster.load("updown").nodes[0].pid() == pid


def test_status_shows_the_node_up(updown: subprocess.CompletedProcess[str]) -> None:
    shown = astrachaos("local", "status", "--name", "updown")
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if "127.0.0.21" in line)
    assert " up " in row and "5.0.9" in row and "9100" in row


def test_nodetool_status_works(updown: subprocess.CompletedProcess[str]) -> None:
    shown = astrachaos("local", "nodetool", "node1", "status", "--name", "updown")
    assert shown.returncode == 0, shown.stderr
    assert "UN  127.0.0.21" in shown.stdout


def test_a_node_whose_cql_is_disabled_is_cql_off_not_starting(
    updown: subprocess.CompletedProcess[str],
) -> None:
    node = LocalCluster.load("updown").nodes[0]
    node.nodetool(["disablebinary"])
    try:
        assert node.state() is NodeState.CQL_OFF
    finally:
        node.nodetool(["enablebinary"])
    assert node.state() is NodeState.UP


def test_logs_print_the_system_log(updown: subprocess.CompletedProcess[str]) -> None:
    shown = astrachaos("local", "logs", "node1", "--name", "updown", "-n", "2000")
    assert shown.returncode == 0, shown.stderr
    assert "Starting listening for CQL clients on /127.0.0.21:9042" in shown.stdout


def test_pause_resume_kill_and_start_a_node(updown: subprocess.CompletedProcess[str]) -> None:
    node = LocalCluster.load("updown").nodes[0]
    node.pause()
    assert node.state() is NodeState.PAUSED
    node.resume()
    assert node.state() is NodeState.UP
    node.kill()
    assert node.state() is NodeState.DOWN and node.pid() is None
    node.start()
    assert node.wait_ready(240).startswith("5.0.")
    assert node.state() is NodeState.UP


def test_down_leaves_no_cassandra_process_even_from_a_paused_node(
    updown: subprocess.CompletedProcess[str],
) -> None:
    cluster = LocalCluster.load("updown")
    assert daemons_under(cluster.directory)
    cluster.nodes[0].pause()
    stopped = astrachaos("local", "down", "--name", "updown", "--wipe")
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped node1" in stopped.stdout and "wiped" in stopped.stdout
    assert daemons_under(cluster.directory) == []
    assert not cluster.directory.exists()


def test_a_taken_port_exits_4_naming_port_and_address() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.25", 9042))
        squatter.listen()
        failed = astrachaos("local", "up", "--name", "portclash", "--first-address", "127.0.0.25")
    assert failed.returncode == 4
    assert "port 9042 on 127.0.0.25" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert LocalCluster.saved_spec("portclash") is None


def test_a_node_not_up_in_time_exits_4_with_its_last_log_lines() -> None:
    wipe_if_present("late")
    try:
        late = astrachaos(
            "local", "up", "--name", "late", "--first-address", "127.0.0.27", "--timeout", "3"
        )
        assert late.returncode == 4
        assert "did not come up within 3 s" in late.stderr and "Last lines of" in late.stderr
        assert "Traceback" not in late.stderr
    finally:
        wipe_if_present("late")


def test_the_not_up_in_time_error_carries_the_log_lines() -> None:
    wipe_if_present("late")
    node = LocalCluster(ClusterSpec(name="late", first_address="127.0.0.27", heap_mb=512)).nodes[0]
    try:
        node.start()
        deadline = time.monotonic() + 120
        while not node.log_tail() and time.monotonic() < deadline:
            time.sleep(0.2)
        with pytest.raises(EnvironmentProblem) as raised:
            node.wait_ready(0)
        assert raised.value.exit_code == 4
        assert "did not come up within 0 s" in raised.value.message
        assert str(node.layout.system_log) in raised.value.message
        logged = raised.value.message.split("Last lines of", 1)[1].splitlines()[1:]
        assert 1 <= len(logged) <= 15 and logged[0].startswith("INFO  [")
    finally:
        node.stop()
        wipe_if_present("late")
