"""A starting node is judged by its process, not by a /proc snapshot taken mid-exec."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from astrachaos.errors import EnvironmentProblem
from astrachaos.local.layout import NodeLayout
from astrachaos.local.node import LocalNode
from astrachaos.local.provision import Runtime
from astrachaos.local.spec import ClusterSpec


def _no_runtime() -> Runtime:
    raise AssertionError("a readiness check must not provision anything")


@pytest.fixture
def node(tmp_path: Path) -> LocalNode:
    layout = NodeLayout(tmp_path / "node1")
    layout.logs.mkdir(parents=True)
    return LocalNode(ClusterSpec(name="probe"), 0, layout, _no_runtime)


@pytest.fixture
def shell() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not (yet) a CassandraDaemon, like the shell before its exec."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield process
    process.kill()
    process.wait()


def test_a_live_process_not_yet_java_is_still_starting(
    node: LocalNode, shell: subprocess.Popen[bytes]
) -> None:
    node.layout.pid_file.write_text(f"{shell.pid}\n")
    assert node.pid() is None
    assert not node.launch_gone()
    assert node.poll_ready() is None


def test_a_launch_whose_process_is_gone_exited_while_starting(node: LocalNode) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    node.layout.pid_file.write_text(f"{gone.pid}\n")
    assert node.launch_gone()
    with pytest.raises(EnvironmentProblem, match="exited while starting"):
        node.poll_ready()


def test_a_node_never_launched_has_no_process(node: LocalNode) -> None:
    assert node.launch_gone()
