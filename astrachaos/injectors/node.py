"""Node injectors: crash, freeze, stop or disable a node of a local cluster — the real server."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from astrachaos.errors import EnvironmentProblem
from astrachaos.injectors.interface import ConnectOverrides, Counters, InjectorContext, InjectorStats

NodeAction = Literal[
    "kill", "pause", "stop", "restart", "disablebinary", "disablegossip", "drain", "setconcurrency"
]


class NodeParams(BaseModel):
    """Parameters of the node injector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: NodeAction = Field("kill", description="What to do to the node.")
    node: str = Field("node2", description="Node name (node2), number (2) or address.")
    stage: str = Field("MutationStage", description="setconcurrency: the thread pool stage.")
    concurrency: int = Field(1, ge=1, description="setconcurrency: its maximum concurrency.")
    ready_timeout_s: float = Field(180, gt=0, description="How long rollback waits for the node.")


class NodeInjector:
    """Acts on one node; rollback brings it back and waits until it serves CQL again."""

    name: ClassVar[str] = "node"
    kind: ClassVar[str] = "node"
    Params: ClassVar[type[BaseModel]] = NodeParams

    def __init__(self, params: NodeParams, context: InjectorContext) -> None:
        if context.local_cluster is None:
            raise EnvironmentProblem(
                "the node injector needs a local cluster astrachaos runs (profile kind `local`)"
            )
        self._params = params
        self._node: Any = context.local_cluster.node(params.node)
        self._counters = Counters()
        self._previous_concurrency: str | None = None

    def prepare(self) -> ConnectOverrides | None:
        """The node must be up before the run starts."""
        if self._node.state().value != "up":
            raise EnvironmentProblem(f"{self._node.name} is {self._node.state().value}, not up")
        return None

    def apply(self) -> None:
        """Do the action to the node."""
        p, node = self._params, self._node
        match p.action:
            case "kill":
                node.kill()
            case "pause":
                node.pause()
            case "stop" | "drain":
                if p.action == "drain":
                    node.nodetool(["drain"])
                node.stop()
            case "restart":
                node.restart(p.ready_timeout_s)
            case "disablebinary" | "disablegossip":
                node.nodetool([p.action])
            case "setconcurrency":
                self._previous_concurrency = _max_pool_size(node.nodetool(["getconcurrency", p.stage]).stdout)
                node.nodetool(["setconcurrency", p.stage, str(p.concurrency)])
        self._counters.seen(p.action)

    def rollback(self) -> None:
        """Undo the action and wait until the node serves CQL again."""
        p, node = self._params, self._node
        match p.action:
            case "kill" | "stop" | "drain":
                node.start()
                node.wait_ready(p.ready_timeout_s)
            case "pause":
                node.resume()
            case "restart":
                pass
            case "disablebinary":
                node.nodetool(["enablebinary"])
            case "disablegossip":
                node.nodetool(["enablegossip"])
            case "setconcurrency":
                if self._previous_concurrency is not None:
                    node.nodetool(["setconcurrency", p.stage, self._previous_concurrency])

    def close(self) -> None:
        """Nothing to release."""

    def stats(self) -> InjectorStats:
        """How many times the action was taken."""
        return self._counters.stats(self.name, self.kind)


def _max_pool_size(getconcurrency_output: str) -> str:
    """The maximum pool size from `nodetool getconcurrency STAGE` (its table's last column)."""
    for line in reversed(getconcurrency_output.strip().splitlines()):
        fields = line.split()
        if len(fields) >= 3 and fields[-1].isdigit():
            return fields[-1]
    raise EnvironmentProblem(f"cannot read the stage's concurrency from: {getconcurrency_output!r}")
