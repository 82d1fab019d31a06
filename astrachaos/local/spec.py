"""What a local cluster is: its name, Cassandra version, node count, addresses, ports and tokens."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import asdict, dataclass

from astrachaos.errors import UsageProblem

DEFAULT_VERSION = "5.0.9"
DEFAULT_CLUSTER = "default"
DEFAULT_FIRST_ADDRESS = "127.0.0.1"
CQL_PORT = 9042
STORAGE_PORT = 7000
MAX_NODES = 3

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_VERSION = re.compile(r"^5\.0\.\d+$")
_TOKEN_SPACE = 2**64
_MIN_TOKEN = -(2**63)


def jmx_port(address: str) -> int:
    """JMX port of the node at 127.0.0.N: 7000 + 100 * N (127.0.0.1 → 7100, .11 → 8100)."""
    return STORAGE_PORT + 100 * int(address.rsplit(".", 1)[1])


def balanced_tokens(nodes: int) -> list[int]:
    """One Murmur3 token per node, spread evenly over the ring."""
    step = _TOKEN_SPACE // nodes
    return [_MIN_TOKEN + i * step for i in range(nodes)]


@dataclass(frozen=True)
class ClusterSpec:
    """The parameters of one local cluster; persisted beside its nodes as cluster.json."""

    name: str = DEFAULT_CLUSTER
    nodes: int = 1
    first_address: str = DEFAULT_FIRST_ADDRESS
    version: str = DEFAULT_VERSION
    heap_mb: int | None = None
    auth: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise UsageProblem(
                f"invalid cluster name {self.name!r}",
                hint="use up to 32 lower-case letters, digits, '-' or '_'",
            )
        if not 1 <= self.nodes <= MAX_NODES:
            raise UsageProblem(f"a local cluster has 1 to {MAX_NODES} nodes, not {self.nodes}")
        if not _VERSION.match(self.version):
            raise UsageProblem(
                f"unsupported Cassandra version {self.version!r}",
                hint=f"astrachaos runs Apache Cassandra 5.0.x (default {DEFAULT_VERSION})",
            )
        self._check_address()
        if self.heap_mb is not None and self.heap_mb < 256:
            raise UsageProblem(f"heap of {self.heap_mb} MB is too small; give at least 256")

    def _check_address(self) -> None:
        try:
            first = ipaddress.IPv4Address(self.first_address)
        except ValueError:
            raise UsageProblem(f"invalid address {self.first_address!r}") from None
        last_octet = int(str(first).rsplit(".", 1)[1])
        if not str(first).startswith("127.0.0.") or last_octet < 1 or last_octet + self.nodes > 255:
            raise UsageProblem(
                f"nodes must live on 127.0.0.1-254; {self.first_address} with "
                f"{self.nodes} node(s) does not fit",
                hint="pick a first address such as 127.0.0.1 or 127.0.0.21",
            )

    @property
    def addresses(self) -> list[str]:
        """Each node's address: consecutive from the first address."""
        base = ipaddress.IPv4Address(self.first_address)
        return [str(base + i) for i in range(self.nodes)]

    @property
    def heap(self) -> int:
        """Heap per node in MB: 1 GB for a single node, 512 MB each when there are several."""
        if self.heap_mb is not None:
            return self.heap_mb
        return 1024 if self.nodes == 1 else 512

    @property
    def tokens(self) -> list[int]:
        """The initial token of each node."""
        return balanced_tokens(self.nodes)

    def same_topology(self, other: ClusterSpec) -> bool:
        """True when both describe the same nodes (count and addresses)."""
        return (self.nodes, self.first_address) == (other.nodes, other.first_address)

    def to_json(self) -> str:
        """Serialise for cluster.json."""
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ClusterSpec:
        """Read back what to_json wrote."""
        raw = json.loads(text)
        return cls(
            name=str(raw["name"]),
            nodes=int(raw["nodes"]),
            first_address=str(raw["first_address"]),
            version=str(raw["version"]),
            heap_mb=None if raw.get("heap_mb") is None else int(raw["heap_mb"]),
            auth=bool(raw.get("auth", False)),
        )
