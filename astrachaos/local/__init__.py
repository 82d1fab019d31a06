"""A local Apache Cassandra cluster from Maven Central jars: provision, configure, start, stop."""

from __future__ import annotations

from astrachaos.local.cluster import DownResult, LocalCluster, NodeStatus, UpResult
from astrachaos.local.node import LocalNode, NodeState
from astrachaos.local.spec import DEFAULT_CLUSTER, DEFAULT_VERSION, ClusterSpec

__all__ = [
    "DEFAULT_CLUSTER",
    "DEFAULT_VERSION",
    "ClusterSpec",
    "DownResult",
    "LocalCluster",
    "LocalNode",
    "NodeState",
    "NodeStatus",
    "UpResult",
]
