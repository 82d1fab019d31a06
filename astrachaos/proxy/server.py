"""The proxy of a set of nodes: one listener per node on its own loopback address, one loop thread.

Every method meant for other threads (the scheduler applying faults, the injectors reading
counters) hands its work to the proxy's event loop and waits for it, so a toxic is in force
when `add_toxic` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from astrachaos.proxy.addresses import allocate_proxy_addresses
from astrachaos.proxy.connection import ProxyConnection
from astrachaos.proxy.interception import CqlRelay, PreparedStatements, RequestPolicy
from astrachaos.proxy.toxics import ActiveToxic, Direction, Down, Toxic

log = logging.getLogger(__name__)
T = TypeVar("T")
CONNECT_TIMEOUT_S = 5.0

Address = tuple[str, int]
# Builds the CQL relay of one accepted connection: (upstream node, listen address) → relay.
RelayFactory = Callable[[Address, Address], CqlRelay]


@dataclass(frozen=True)
class ProxyCounters:
    """What the proxy relayed so far."""

    connections: int
    open_connections: int
    bytes_upstream: int
    bytes_downstream: int
    toxics_hit: dict[str, int]


class LoopThread:
    """An asyncio event loop running in a daemon thread of its own."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        """Run `coroutine` on the loop and wait for its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def stop(self) -> None:
        """Cancel what still runs, stop the loop and join the thread."""

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_all(), timeout_s=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class ProxySet:
    """Proxies for `targets` (loopback node addresses sharing `port`), toxics and CQL policies.

    `routes` (upstream node → listen address) replaces the automatic loopback allocation (the
    standalone proxy); `relay_factory` makes every connection CQL-aware with the relay it builds.
    """

    def __init__(
        self,
        targets: Sequence[str],
        port: int,
        *,
        random_seed: int = 0,
        routes: Mapping[Address, Address] | None = None,
        relay_factory: RelayFactory | None = None,
    ) -> None:
        self.port = port
        if routes is None:
            self.mapping = allocate_proxy_addresses(targets, port)  # node address → proxy address
            self.routes = {(node, port): (proxy, port) for node, proxy in self.mapping.items()}
        else:
            self.routes = dict(routes)
            self.mapping = {node[0]: listen[0] for node, listen in self.routes.items()}
        self.rng = random.Random(random_seed)
        self.prepared = PreparedStatements()
        self.cql = relay_factory is not None
        self._relay_factory = relay_factory
        self._toxics: tuple[ActiveToxic, ...] = ()
        self._policies: tuple[RequestPolicy, ...] = ()
        self._next_key = 0
        self._changed: asyncio.Event | None = None
        self._servers: dict[str, asyncio.Server] = {}
        self._connections: set[ProxyConnection] = set()
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._thread: LoopThread | None = None

    # --- called from any thread -------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread and listen on every proxy address (pass-through)."""
        if self._thread is not None:
            return
        self._thread = LoopThread("astrachaos-proxy")
        try:
            self._thread.run(self._listen_all())
        except BaseException:
            self.close()
            raise

    @property
    def contact_points(self) -> list[str]:
        """The proxy addresses the driver must be given instead of the nodes."""
        return list(self.mapping.values())

    @property
    def listening(self) -> list[Address]:
        """Where the proxy listens, one address per upstream node."""
        return list(self.routes.values())

    def add_toxic(self, toxic: Toxic, direction: Direction, toxicity: float, label: str = "") -> ActiveToxic:
        """Put a toxic in force; returns the handle `remove_toxic` takes."""
        with self._lock:
            self._next_key += 1
            active = ActiveToxic(self._next_key, toxic, direction, toxicity, label)
        self._call(self._set_toxics((*self._toxics, active)))
        return active

    def remove_toxic(self, active: ActiveToxic) -> None:
        """Take a toxic out of force (no-op if it is not in force)."""
        if active in self._toxics:
            self._call(self._set_toxics(tuple(t for t in self._toxics if t != active)))

    def add_policy(self, policy: RequestPolicy) -> None:
        """Offer every targeted CQL request to `policy` (connections opened from now on parse CQL)."""
        with self._lock:
            self.cql = True
            self._policies = (*self._policies, policy)

    def remove_policy(self, policy: RequestPolicy) -> None:
        """Stop offering requests to `policy`."""
        with self._lock:
            self._policies = tuple(p for p in self._policies if p != policy)  # bound methods: ==

    def policies(self) -> tuple[RequestPolicy, ...]:
        """The policies in force (read by the relays on the loop)."""
        return self._policies

    def counters(self) -> ProxyCounters:
        """A snapshot of the counters."""
        counts = dict(self._counts)
        toxic_names = {"latency", "bandwidth", "timeout", "reset_peer", "slicer", "limit_data", "down"}
        return ProxyCounters(
            connections=counts.get("connections", 0),
            open_connections=len(self._connections),
            bytes_upstream=counts.get("bytes_upstream", 0),
            bytes_downstream=counts.get("bytes_downstream", 0),
            toxics_hit={k: v for k, v in counts.items() if k in toxic_names},
        )

    def close(self) -> None:
        """Stop listening, close every connection, stop the loop (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        with contextlib.suppress(Exception):
            thread.run(self._shutdown(), timeout_s=10)
        thread.stop()

    def _call(self, coroutine: Coroutine[Any, Any, None]) -> None:
        if self._thread is None:
            coroutine.close()
            raise RuntimeError("the proxy is not started")
        self._thread.run(coroutine)

    # --- ConnectionHost, on the loop ---------------------------------------------------------

    def toxics(self) -> tuple[ActiveToxic, ...]:
        """The toxics in force."""
        return self._toxics

    def changed(self) -> asyncio.Event:
        """An event set at the next change of toxics."""
        if self._changed is None:
            self._changed = asyncio.Event()
        return self._changed

    def count(self, what: str, amount: int = 1) -> None:
        """Add to a counter."""
        self._counts[what] += amount

    # --- on the loop ----------------------------------------------------------------------------

    async def _set_toxics(self, toxics: tuple[ActiveToxic, ...]) -> None:
        was_down = self._is_down()
        self._toxics = toxics
        changed, self._changed = self.changed(), asyncio.Event()
        changed.set()
        if self._is_down() and not was_down:
            self.count("down")
            await self._stop_listening()
            for connection in list(self._connections):
                connection.close()
        elif was_down and not self._is_down():
            await self._listen_all()
        for connection in list(self._connections):
            connection.toxics_changed()

    def _is_down(self) -> bool:
        return any(isinstance(t.toxic, Down) for t in self._toxics)

    async def _listen_all(self) -> None:
        for node, (host, port) in self.routes.items():
            key = f"{host}:{port}"
            if key not in self._servers:
                self._servers[key] = await asyncio.start_server(
                    functools.partial(self._accept, node), host, port, reuse_address=True
                )

    async def _stop_listening(self) -> None:
        servers, self._servers = self._servers, {}
        for server in servers.values():
            server.close()
        for server in servers.values():
            await server.wait_closed()

    async def _shutdown(self) -> None:
        await self._stop_listening()
        for connection in list(self._connections):
            connection.close()

    async def _accept(
        self, node: Address, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.count("connections")
        try:
            server = await asyncio.wait_for(asyncio.open_connection(*node), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as error:
            log.info("proxy cannot reach %s:%s: %s", *node, error)
            self.count("upstream_unreachable")
            writer.close()
            return
        if self._is_down():  # went down while this connection was being set up
            writer.close()
            server[1].close()
            return
        if self._relay_factory is not None:
            relay: CqlRelay | None = self._relay_factory(node, self.routes[node])
        else:
            relay = CqlRelay(self.prepared, self.policies) if self.cql else None
        connection = ProxyConnection(self, (reader, writer), server, relay, self._connections.discard)
        self._connections.add(connection)
        await connection.run()
