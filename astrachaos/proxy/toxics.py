"""Network toxics: what a proxied connection suffers, per direction, for a fraction of connections.

Semantics follow Toxiproxy's toxics (latency, bandwidth, timeout, reset_peer, slicer,
limit_data) plus `down` (the proxy refuses connections and closes the open ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    """Which way the bytes a toxic affects travel."""

    UPSTREAM = "upstream"  # client → node
    DOWNSTREAM = "downstream"  # node → client
    BOTH = "both"

    def covers(self, way: Direction) -> bool:
        """Whether a toxic on `self` affects bytes travelling `way` (UPSTREAM or DOWNSTREAM)."""
        return self is Direction.BOTH or self is way


@dataclass(frozen=True)
class Latency:
    """Delay every chunk by `latency_ms` ± `jitter_ms` (uniform), without reordering."""

    latency_ms: float
    jitter_ms: float = 0.0


@dataclass(frozen=True)
class Bandwidth:
    """Let at most `rate_bytes_per_s` through."""

    rate_bytes_per_s: int


@dataclass(frozen=True)
class Timeout:
    """Stop forwarding (hold the bytes, keep the sockets open); close after `timeout_ms` if > 0."""

    timeout_ms: float = 0.0


@dataclass(frozen=True)
class ResetPeer:
    """Reset the connection (TCP RST, SO_LINGER 0) `timeout_ms` after the toxic applies."""

    timeout_ms: float = 0.0


@dataclass(frozen=True)
class Slicer:
    """Cut each chunk into pieces of `average_size` ± `size_variation` bytes, `delay_us` apart."""

    average_size: int
    size_variation: int = 0
    delay_us: int = 0


@dataclass(frozen=True)
class LimitData:
    """Close the connection once `limit_bytes` have passed (counted from when the toxic applies)."""

    limit_bytes: int


@dataclass(frozen=True)
class Down:
    """Refuse new connections and close the open ones (direction and toxicity do not apply)."""


Toxic = Latency | Bandwidth | Timeout | ResetPeer | Slicer | LimitData | Down


def kind_of(toxic: Toxic) -> str:
    """The toxic's name as counters and reports show it."""
    return {
        Latency: "latency",
        Bandwidth: "bandwidth",
        Timeout: "timeout",
        ResetPeer: "reset_peer",
        Slicer: "slicer",
        LimitData: "limit_data",
        Down: "down",
    }[type(toxic)]


@dataclass(frozen=True)
class ActiveToxic:
    """A toxic as applied: its direction, the fraction of connections it affects, a unique key."""

    key: int
    toxic: Toxic
    direction: Direction = Direction.DOWNSTREAM
    toxicity: float = 1.0
    label: str = ""  # the fault's name where several are in force (the standalone proxy)
