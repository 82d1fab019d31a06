"""The network injector: a toxic on the proxy every driver connection goes through."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from astrachaos.errors import EnvironmentProblem
from astrachaos.injectors.interface import ConnectOverrides, InjectorContext, InjectorStats
from astrachaos.proxy import hub
from astrachaos.proxy.addresses import address_translator
from astrachaos.proxy.server import ProxySet
from astrachaos.proxy.toxics import (
    ActiveToxic,
    Bandwidth,
    Direction,
    Down,
    Latency,
    LimitData,
    ResetPeer,
    Slicer,
    Timeout,
    Toxic,
)

ToxicKind = Literal["latency", "bandwidth", "timeout", "reset_peer", "slicer", "limit_data", "down"]


class NetworkParams(BaseModel):
    """Parameters of the network injector (only those of the chosen toxic matter)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    toxic: ToxicKind = Field("latency", description="Which toxic the proxy applies.")
    direction: Literal["upstream", "downstream", "both"] = Field(
        "downstream", description="Bytes affected: upstream (client→node), downstream, or both."
    )
    toxicity: float | None = Field(
        None, ge=0, le=1, description="Fraction of connections affected (default: the probability)."
    )
    latency_ms: float = Field(100, ge=0, description="latency: added delay per chunk.")
    jitter_ms: float = Field(0, ge=0, description="latency: ± uniform jitter.")
    rate_bytes_per_s: int = Field(100_000, ge=1, description="bandwidth: bytes per second.")
    timeout_ms: float = Field(
        0, ge=0, description="timeout: close after this (0: hold forever); reset_peer: delay before RST."
    )
    average_size: int = Field(64, ge=1, description="slicer: mean piece size in bytes.")
    size_variation: int = Field(16, ge=0, description="slicer: ± piece size variation in bytes.")
    delay_us: int = Field(1000, ge=0, description="slicer: pause between pieces, microseconds.")
    limit_bytes: int = Field(1024, ge=0, description="limit_data: close after this many bytes.")


def toxic_of(params: NetworkParams) -> Toxic:
    """The toxic the parameters describe."""
    match params.toxic:
        case "latency":
            return Latency(params.latency_ms, params.jitter_ms)
        case "bandwidth":
            return Bandwidth(params.rate_bytes_per_s)
        case "timeout":
            return Timeout(params.timeout_ms)
        case "reset_peer":
            return ResetPeer(params.timeout_ms)
        case "slicer":
            return Slicer(params.average_size, params.size_variation, params.delay_us)
        case "limit_data":
            return LimitData(params.limit_bytes)
        case "down":
            return Down()


def proxy_targets(context: InjectorContext) -> tuple[list[str], int]:
    """Every node the driver may reach (all nodes of a local cluster) and their port."""
    profile = context.profile
    if getattr(profile, "kind", None) == "astra":
        raise EnvironmentProblem(
            "the network and protocol injectors proxy loopback nodes; Astra cannot be proxied",
            hint="use a local or cassandra profile on 127.x.x.x",
        )
    cluster = context.local_cluster
    if cluster is not None:
        return list(cluster.contact_points), int(cluster.port)
    return list(profile.contact_points), int(profile.port)


def connect_through(proxies: ProxySet) -> ConnectOverrides:
    """How the driver reaches every node through `proxies`."""
    return ConnectOverrides(
        contact_points=proxies.contact_points,
        port=proxies.port,
        address_translator=address_translator(proxies.mapping),
    )


class NetworkInjector:
    """Starts (or shares) the node proxies in `prepare`; `apply` puts the toxic in force."""

    name: ClassVar[str] = "network"
    kind: ClassVar[str] = "network"
    Params: ClassVar[type[BaseModel]] = NetworkParams

    def __init__(self, params: NetworkParams, context: InjectorContext) -> None:
        self._params = params
        self._context = context
        self._toxic = toxic_of(params)
        self._shared: ProxySet | None = context.proxies
        self._targets, self._port = ([], 0) if self._shared is not None else proxy_targets(context)
        self._random_seed = context.rng.randrange(2**32)
        self._proxies: ProxySet | None = self._shared
        self._active: ActiveToxic | None = None

    def prepare(self) -> ConnectOverrides | None:
        """Start the proxies in pass-through mode; the driver must connect through them."""
        if self._shared is not None:
            return None  # the standalone proxy: clients already connect through it
        if self._proxies is None:
            self._proxies = hub.acquire(self._targets, self._port, random_seed=self._random_seed)
        return connect_through(self._proxies)

    def apply(self) -> None:
        """Put the toxic in force (idempotent)."""
        if self._proxies is None:
            self.prepare()
        assert self._proxies is not None
        if self._active is None:
            toxicity = self._params.toxicity
            self._active = self._proxies.add_toxic(
                self._toxic,
                Direction(self._params.direction),
                self._context.probability if toxicity is None else toxicity,
                self._context.label or self.name,
            )

    def rollback(self) -> None:
        """Take the toxic out of force (idempotent)."""
        active, self._active = self._active, None
        if active is not None and self._proxies is not None:
            self._proxies.remove_toxic(active)

    def close(self) -> None:
        """Roll back and stop the proxies (when no other injector holds them)."""
        self.rollback()
        proxies, self._proxies = self._proxies, None
        if proxies is not None and proxies is not self._shared:
            hub.release(proxies)

    def stats(self) -> InjectorStats:
        """Connections relayed, and how often the toxics hit."""
        if self._proxies is None:
            return InjectorStats(self.name, self.kind, 0, 0)
        counters = self._proxies.counters()
        hits = counters.toxics_hit
        return InjectorStats(
            self.name, self.kind, counters.connections, hits.get(self._params.toxic, 0), dict(hits)
        )
