"""A named local cluster of one to three nodes: up, down, status, and lookup of its nodes."""

from __future__ import annotations

import fcntl
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from astrachaos.errors import EnvironmentProblem, UsageProblem
from astrachaos.local.layout import NodeLayout, cluster_dir, clusters_root
from astrachaos.local.node import LocalNode, NodeState, StopOutcome
from astrachaos.local.ports import check_ports_free
from astrachaos.local.process import daemons_under
from astrachaos.local.provision import DownloadCallback, DownloadStatus, Runtime, prepare_runtime
from astrachaos.local.readiness import nodes_seeing_all
from astrachaos.local.spec import CQL_PORT, ClusterSpec


@dataclass(frozen=True)
class UpProgress:
    """One step of bringing a cluster up, for whoever shows progress."""

    message: str
    ready: int
    total: int


ProgressCallback = Callable[[UpProgress], None]


class ProgressLines:
    """Plain lines for a log (CI, a pipe): each new phase at once, the same phase every few s."""

    def __init__(
        self,
        say: Callable[[str], None],
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._say, self._every_s, self._clock = say, every_s, clock
        self._began = clock()
        self._phase: str | None = None
        self._last = float("-inf")

    def __call__(self, step: UpProgress) -> None:
        now = self._clock()
        phase = step.message.split(":", 1)[0]
        if phase == self._phase and now - self._last < self._every_s:
            return
        self._phase, self._last = phase, now
        ready = f", {step.ready}/{step.total} nodes ready" if step.message.startswith("waiting") else ""
        self._say(f"local up: {step.message}{ready} ({now - self._began:.0f} s)")


@dataclass(frozen=True)
class UpResult:
    """What `up` did."""

    spec: ClusterSpec
    already_up: bool
    started: tuple[str, ...]
    release_version: str | None
    elapsed_s: float
    directory: Path
    repaired: tuple[str, ...] = ()  # what `up` found wrong with running nodes and fixed


@dataclass(frozen=True)
class DownResult:
    """What `down` did."""

    name: str
    stopped: tuple[str, ...]
    killed: tuple[str, ...]
    wiped: bool
    directory: Path


@dataclass(frozen=True)
class NodeStatus:
    """One row of `status`."""

    cluster: str
    node: str
    address: str
    pid: int | None
    state: NodeState
    version: str
    data_bytes: int
    jmx_port: int


_REPAIRED_READY_S = 60.0


def default_timeout(nodes: int) -> float:
    """Seconds to wait for a cluster to come up: generous, two cores may be busy."""
    return 240.0 + 120.0 * (nodes - 1)


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


class LocalCluster:
    """Nodes sharing a name, a Cassandra version and a state directory."""

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.directory = cluster_dir(spec.name)
        self._runtime: Runtime | None = None
        self.nodes = [
            LocalNode(spec, i, NodeLayout(self.directory / f"node{i + 1}"), self.runtime)
            for i in range(spec.nodes)
        ]

    @staticmethod
    def saved_spec(name: str) -> ClusterSpec | None:
        """The spec recorded by the last `up` of a cluster, if any."""
        path = cluster_dir(name) / "cluster.json"
        return ClusterSpec.from_json(path.read_text()) if path.is_file() else None

    @classmethod
    def load(cls, name: str) -> LocalCluster:
        """The cluster as its last `up` left it; a UsageProblem if it was never created."""
        spec = cls.saved_spec(name)
        if spec is None:
            raise UsageProblem(
                f"there is no local cluster named {name!r} (looked in {cluster_dir(name)})",
                hint=f"create it with `astrachaos local up --name {name}`",
            )
        return cls(spec)

    @staticmethod
    def names() -> list[str]:
        """Every cluster known in the state directory."""
        root = clusters_root()
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if (p / "cluster.json").is_file())

    @property
    def contact_points(self) -> list[str]:
        """The node addresses, for a driver."""
        return self.spec.addresses

    @property
    def port(self) -> int:
        """The CQL port of every node."""
        return CQL_PORT

    def runtime(self, on_download: DownloadCallback | None = None) -> Runtime:
        """Java 17 and the jars of this cluster's version, provisioned once."""
        if self._runtime is None:
            self._runtime = prepare_runtime(self.spec.version, on_download)
        return self._runtime

    def node(self, ref: str) -> LocalNode:
        """A node by name (node2), number (2) or address (127.0.0.2)."""
        for node in self.nodes:
            if ref in (node.name, str(node.index + 1), node.address):
                return node
        names = ", ".join(n.name for n in self.nodes)
        raise UsageProblem(f"cluster {self.spec.name!r} has no node {ref!r} (it has {names})")

    def is_up(self) -> bool:
        """True when every node is up."""
        return all(node.state() is NodeState.UP for node in self.nodes)

    def _check_compatible(self) -> None:
        saved = self.saved_spec(self.spec.name)
        if saved is None or saved == self.spec:
            return
        running = any(node.pid() is not None for node in self.nodes)
        if not saved.same_topology(self.spec) or running:
            raise UsageProblem(
                f"cluster {self.spec.name!r} exists with other settings ({saved.nodes} node(s) "
                f"from {saved.first_address}, heap {saved.heap} MB, auth {saved.auth})",
                hint=f"`astrachaos local down --wipe --name {self.spec.name}` first, or pick "
                "another --name",
            )

    def up(
        self, progress: ProgressCallback | None = None, timeout_s: float | None = None
    ) -> UpResult:
        """Provision, configure and start every node that is down, then wait until all are up."""
        began = time.monotonic()
        with self._lock():
            self._check_compatible()
            repaired = self._repair(progress)
            if self.is_up():
                version = self.wait_ready(_REPAIRED_READY_S, progress) if repaired else None
                elapsed = time.monotonic() - began
                return UpResult(self.spec, True, (), version, elapsed, self.directory, repaired)
            version, started = self._start(progress, timeout_s)
        elapsed = time.monotonic() - began
        return UpResult(self.spec, False, started, version, elapsed, self.directory, repaired)

    def _repair(self, progress: ProgressCallback | None) -> tuple[str, ...]:
        """Thaw paused nodes, turn CQL back on where it was turned off; say what was done.

        A run killed with kill -9 cannot roll its node faults back: a SIGSTOPped node would make
        `up` wait on a node that can never answer.
        """
        done: list[str] = []
        for node in self.nodes:
            state = node.state()
            if state is NodeState.PAUSED:
                what = f"{node.name} was paused (SIGSTOP, e.g. a node fault of a killed run)"
                if progress is not None:
                    progress(UpProgress(f"{what}: resuming it", 0, self.spec.nodes))
                node.resume()
                done.append(f"{what}: resumed it with SIGCONT")
            elif state is NodeState.CQL_OFF:
                what = f"{node.name} ran with its CQL port off (nodetool disablebinary)"
                if progress is not None:
                    progress(UpProgress(f"{what}: enabling it", 0, self.spec.nodes))
                node.nodetool(["enablebinary"])
                done.append(f"{what}: ran nodetool enablebinary")
        return tuple(done)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        # Two processes running `up` together: the second waits, then finds the cluster up.
        clusters_root().mkdir(parents=True, exist_ok=True)
        with open(clusters_root() / f".{self.spec.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _start(
        self, progress: ProgressCallback | None, timeout_s: float | None
    ) -> tuple[str, tuple[str, ...]]:
        total = self.spec.nodes

        def report(message: str) -> None:
            if progress is not None:
                progress(UpProgress(message, 0, total))

        to_start = [node for node in self.nodes if node.pid() is None]
        report("checking ports")
        for node in to_start:
            check_ports_free(node.address)
        report("looking for Java 17")
        self.runtime(lambda status: report(_downloading(status)))
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "cluster.json").write_text(self.spec.to_json())
        for node in to_start:
            report(f"starting {node.name} at {node.address}")
            node.start()
        version = self.wait_ready(timeout_s or default_timeout(total), progress)
        return version, tuple(node.name for node in to_start)

    def wait_ready(self, timeout_s: float, progress: ProgressCallback | None = None) -> str:
        """Wait until every node answers CQL and sees all the others; return the version."""
        deadline = time.monotonic() + timeout_s
        total = self.spec.nodes
        versions: dict[str, str] = {}
        while len(versions) < total:
            for node in self.nodes:
                if node.name not in versions:
                    version = node.poll_ready()
                    if version is not None:
                        versions[node.name] = version
            if progress is not None:
                progress(UpProgress("waiting for CQL", len(versions), total))
            if len(versions) < total:
                if time.monotonic() >= deadline:
                    late = next(n for n in self.nodes if n.name not in versions)
                    raise late.not_ready_error(timeout_s)
                time.sleep(1.0)
        while total > 1 and (seen := nodes_seeing_all(self.contact_points, self.port)) < total:
            if progress is not None:
                progress(UpProgress("waiting for the nodes to see each other", seen, total))
            if time.monotonic() >= deadline:
                raise EnvironmentProblem(
                    f"cluster {self.spec.name!r}: only {seen} of {total} nodes see all the "
                    f"others after {timeout_s:.0f} s",
                    hint=f"see the logs under {self.directory}",
                )
            time.sleep(1.0)
        return versions[self.nodes[0].name]

    def down(self, wipe: bool = False, timeout_s: float = 60.0) -> DownResult:
        """Stop every node (SIGTERM, then SIGKILL after the timeout); wipe deletes its directory."""
        pids = {node.name: node.request_stop() for node in self.nodes}
        outcomes = {node.name: node.wait_stopped(pids[node.name], timeout_s) for node in self.nodes}
        left = daemons_under(self.directory)
        if left:
            raise EnvironmentProblem(
                f"cluster {self.spec.name!r}: processes {left} are still running after down"
            )
        if wipe:
            shutil.rmtree(self.directory, ignore_errors=True)
        return DownResult(
            self.spec.name,
            tuple(n for n, o in outcomes.items() if o is StopOutcome.STOPPED),
            tuple(n for n, o in outcomes.items() if o is StopOutcome.KILLED),
            wipe,
            self.directory,
        )

    def status(self) -> list[NodeStatus]:
        """One row per node; load is the size of the node's data directory on disk."""
        return [
            NodeStatus(
                cluster=self.spec.name,
                node=node.name,
                address=node.address,
                pid=node.pid(),
                state=node.state(),
                version=self.spec.version,
                data_bytes=_dir_size(node.layout.data),
                jmx_port=node.jmx_port,
            )
            for node in self.nodes
        ]


def _downloading(status: DownloadStatus) -> str:
    return (
        f"downloading Apache Cassandra {status.version} jars from Maven Central (first run): "
        f"{status.artifacts} artifacts, {status.bytes / 1e6:.1f} MB"
    )


def requested_spec(
    name: str,
    *,
    nodes: int | None = None,
    first_address: str | None = None,
    version: str | None = None,
    heap_mb: int | None = None,
    auth: bool | None = None,
) -> ClusterSpec:
    """The spec `up` should use: what was asked for, else what the cluster had, else defaults."""
    base = LocalCluster.saved_spec(name) or ClusterSpec(name=name)
    return replace(
        base,
        nodes=base.nodes if nodes is None else nodes,
        first_address=first_address or base.first_address,
        version=version or base.version,
        heap_mb=base.heap_mb if heap_mb is None else heap_mb,
        auth=base.auth if auth is None else auth,
    )
