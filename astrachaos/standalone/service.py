"""`astrachaos proxy`: a long-running CQL fault proxy in front of real nodes, for any client.

One listener per upstream node; answers that name nodes are rewritten to listener addresses
(`topology.py`); faults are the scenario injectors of the network and protocol kinds, added from
a file or at run time and always rolled back; with a capture directory every write that passes
is recorded (`capture.py`) for `astrachaos verify --capture`. In TCP mode (`passthrough`, for
TLS clients) bytes are forwarded unread: network faults only, no capture, no rewriting.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from astrachaos.errors import EnvironmentProblem, InvalidScenario, RollbackFailed, UsageProblem
from astrachaos.events import FaultWindow
from astrachaos.injectors.interface import ClientHooks, Injector, InjectorContext
from astrachaos.injectors.registry import lookup
from astrachaos.injectors.schedule import ScheduledFault
from astrachaos.proxy.interception import CqlRelay, Topology
from astrachaos.proxy.server import Address, ProxySet
from astrachaos.proxy.topology import AddressMap
from astrachaos.scenario import InjectorSpec

log = logging.getLogger(__name__)

PROXY_KINDS = ("network", "protocol")
DEFAULT_LISTEN: Address = ("127.0.0.1", 9142)
DEFAULT_API: Address = ("127.0.0.1", 8474)


def parse_address(text: str, default_port: int | None = None) -> Address:
    """`HOST:PORT` (or `HOST` with a default port) as a (host, port) pair."""
    host, colon, port = text.rpartition(":")
    if not colon:
        host, port = text, ""
    if not port:
        if default_port is None:
            raise UsageProblem(f"{text!r}: expected HOST:PORT")
        return (host or text, default_port)
    try:
        return (host.strip("[]"), int(port))
    except ValueError:
        raise UsageProblem(f"{text!r}: the port is not a number") from None


def listen_addresses(upstreams: Sequence[Address], listen: Address) -> dict[Address, Address]:
    """One listener per node: the next loopback addresses on one port, or the next ports elsewhere.

    On 127.0.0.0/8 every node gets its own address on the same port, so drivers that read
    `system.peers` (addresses only) and those that read `system.peers_v2` both tell nodes apart.
    """
    host, port = listen
    try:
        first = ipaddress.IPv4Address("127.0.0.1" if host == "localhost" else host)
    except ValueError:
        first = None
    routes = {}
    for index, node in enumerate(upstreams):
        if first is not None and first.is_loopback:
            routes[node] = (str(first + index), port)
        else:
            routes[node] = (host, port + index)
    return routes


def read_faults(path: Path) -> list[dict[str, Any]]:
    """The `injectors:` list of a faults file or of a scenario file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageProblem(f"--faults {path}: {error}") from None
    except yaml.YAMLError as error:
        raise InvalidScenario(f"{path}: not YAML: {error}") from None
    if isinstance(data, dict):
        data = data.get("injectors", [])
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise InvalidScenario(f"{path}: expected a list of injectors (or a scenario with `injectors:`)")
    return data


@dataclass
class _Fault:
    label: str
    spec: InjectorSpec
    injector: Injector
    scheduled: ScheduledFault
    added_at: float
    windows: list[dict[str, float | None]] = field(default_factory=list)


class StandaloneProxy:
    """The proxy, its faults and its capture; every method may be called from any thread."""

    def __init__(
        self,
        upstreams: Sequence[Address],
        listen: Address = DEFAULT_LISTEN,
        *,
        capture_dir: Path | None = None,
        schema_session: Any = None,
        random_seed: int = 0,
        passthrough: bool = False,
    ) -> None:
        if not upstreams:
            raise UsageProblem("give at least one --upstream HOST:PORT (or --profile)")
        if passthrough and capture_dir is not None:
            raise UsageProblem(
                "--tcp forwards bytes it does not read (TLS): it cannot capture writes",
                hint="capture needs plaintext CQL between the client and the proxy",
            )
        self.passthrough = passthrough
        self.routes = listen_addresses(upstreams, listen)
        self.addresses = AddressMap.resolve(self.routes)
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(random_seed)
        self._faults: dict[str, _Fault] = {}
        self._removed: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._kick = threading.Event()  # a fault was added (or the proxy stops): tick now
        self._started = time.monotonic()
        self.capture: Any = None
        self.ledger: Any = None
        if capture_dir is not None:
            self._open_capture(capture_dir, schema_session)
        relay = None if passthrough else self._relay
        self.proxies = ProxySet([], 0, random_seed=random_seed, routes=self.routes, relay_factory=relay)
        self._ticker = threading.Thread(target=self._tick, name="proxy-faults", daemon=True)

    def _open_capture(self, directory: Path, session: Any) -> None:
        from astrachaos.capture.ledger import IDLE_S, CaptureLedger
        from astrachaos.capture.tape import tape_path
        from astrachaos.standalone.capture import SchemaCache, WriteCapture, schema_of
        from astrachaos.standalone.taped import TapedCapture, replay_left_tape

        if session is None:
            raise UsageProblem("--capture needs a session to read system_schema")

        schema = SchemaCache(schema_of(session))
        schema.refresh()
        # The loop only puts what its relays saw on the capture's tape (`taped.py`); the tape is
        # replayed into the ledger in the client's pauses, and the ledger's thread puts what it
        # journals into SQLite in the pauses after that.
        self.ledger = CaptureLedger(directory, {"proxy": json.dumps(self._proxy_meta())},
                                    commit_interval_s=IDLE_S)  # fmt: skip
        if replay_left_tape(self.ledger, schema, tape_path(directory)):  # its proxy was killed
            self.ledger.flush()  # journaled: the tape can start again
        self.capture = TapedCapture(WriteCapture(self.ledger, schema), directory)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Listen on every route; start the fault schedules."""
        try:
            self.proxies.start()
        except OSError as error:
            raise EnvironmentProblem(f"the proxy cannot listen: {error}") from None
        self._ticker.start()

    def capture_backlog_bytes(self) -> int:
        """Bytes of captured writes capture.sqlite does not hold yet: tape not replayed, journal
        not applied (0: no capture)."""
        return 0 if self.capture is None else int(self.capture.backlog_bytes())

    def close(self) -> None:
        """Roll every fault back, stop listening, close connections, close the capture (idempotent)."""
        self._stop.set()
        self._kick.set()
        failed = []
        with self._lock:
            labels = list(self._faults)
        for label in reversed(labels):
            try:
                self.remove_fault(label)
            except Exception as error:  # every rollback is attempted
                failed.append(f"{label}: {error}")
        self.proxies.close()
        if self.ledger is not None:
            self.capture.close()  # the tape replayed whole
            self.ledger.set_meta("proxy", json.dumps(self._proxy_meta()))
            self.ledger.set_meta("injectors", json.dumps(self.injector_summaries()))
            self.ledger.set_meta("stats", json.dumps(self.stats()))
            self.ledger.close()
            self.ledger = None
            self.capture.tape.path.unlink(missing_ok=True)  # all of it is in SQLite now
        if self.capture is not None:
            self.capture.schema.close()
        if failed:
            raise RollbackFailed("rollback failed; these faults may still be active: " + "; ".join(failed))

    def _proxy_meta(self) -> dict[str, Any]:
        """What the capture's result.json says about the proxy: its routes, what it could not read."""
        return {
            "mode": "tcp" if self.passthrough else "cql",
            "upstreams": [f"{h}:{p}" for h, p in self.routes],
            "listen": [f"{h}:{p}" for h, p in self.routes.values()],
            "not_followed": self.not_followed(),
            "compressed_connections": self._compressed_connections(),
        }

    # -- faults --------------------------------------------------------------------------------

    def add_fault(self, raw: dict[str, Any]) -> str:
        """Validate one injector (the scenario's YAML fields, plus an optional `label`) and schedule it."""
        fields = dict(raw)
        label = str(fields.pop("label", "") or "")
        try:
            spec = InjectorSpec.model_validate(fields)
        except ValidationError as error:
            raise InvalidScenario(
                f"fault {raw!r}: {error.errors()[0]['msg']} at {error.errors()[0]['loc']}"
            ) from None
        factory = lookup(spec.name)
        if factory.kind not in PROXY_KINDS:
            raise InvalidScenario(
                f"injector {spec.name!r} is of kind {factory.kind}; the proxy takes {PROXY_KINDS}"
            )
        if self.passthrough and factory.kind != "network":
            raise UsageProblem(
                f"injector {spec.name!r} reads CQL frames; this proxy runs --tcp (bytes unread): "
                "network faults only"
            )
        try:
            params = factory.Params.model_validate(spec.params)
        except ValidationError as error:
            raise InvalidScenario(
                f"{spec.name} params: {error.errors()[0]['msg']} at {error.errors()[0]['loc']}"
            ) from None
        with self._lock:
            label = label or self._free_label(spec.name)
            if label in self._faults:
                raise UsageProblem(f"a fault named {label!r} is already in force")
            rng = random.Random(self._rng.randrange(2**32))
            context = InjectorContext(
                profile=None, local_cluster=None, client_hooks=ClientHooks(), rng=rng,
                probability=spec.schedule.probability, proxies=self.proxies, label=label,
            )  # fmt: skip
            injector = factory(params, context)
            injector.prepare()
            windows: list[dict[str, float | None]] = []

            def on_window(window: FaultWindow) -> None:
                _record_window(windows, window)

            scheduled = ScheduledFault(
                label, injector.apply, injector.rollback, spec.schedule, rng, on_window, injector.kind
            )
            fault = _Fault(label, spec, injector, scheduled, time.monotonic(), windows)
            self._faults[label] = fault
            fault.scheduled.tick(0.0)
        self._kick.set()
        log.info("fault %s added", label)
        return label

    def remove_fault(self, label: str) -> None:
        """Roll a fault back and forget it."""
        with self._lock:
            fault = self._faults.pop(label, None)
        if fault is None:
            raise UsageProblem(f"no fault named {label!r}")
        try:
            fault.scheduled.end()
        finally:
            fault.injector.close()
        self._removed.append(self._summary(fault))
        log.info("fault %s removed", label)

    def reset(self) -> list[str]:
        """Remove every fault."""
        with self._lock:
            labels = list(self._faults)
        for label in reversed(labels):
            self.remove_fault(label)
        return labels

    def faults(self) -> list[dict[str, Any]]:
        """The faults in force (scheduled), with whether each is applied right now."""
        with self._lock:
            return [self._summary(f) for f in self._faults.values()]

    def injector_summaries(self) -> list[dict[str, Any]]:
        """Every fault this proxy ran (removed ones included), for result.json."""
        return [*self._removed, *self.faults()]

    def _summary(self, fault: _Fault) -> dict[str, Any]:
        stats = fault.injector.stats()
        return {
            "label": fault.label, "name": fault.spec.name, "kind": stats.kind,
            "params": fault.spec.params, "schedule": fault.spec.schedule.model_dump(),
            "applied": fault.scheduled.applied, "requests": stats.requests, "injected": stats.injected,
            "by_type": stats.by_type, "windows": list(fault.windows),
        }  # fmt: skip

    def _free_label(self, name: str) -> str:
        label, n = name, 1
        while label in self._faults:
            n += 1
            label = f"{name}-{n}"
        return label

    def _tick(self) -> None:
        """Every 10 ms while faults are in force (their schedules), else once a second (a wake-up
        every 10 ms cost the relay a GIL hand-over each); what passed unread is recorded each second."""
        recorded = self.not_followed()
        recorded_at = time.monotonic()
        while not self._stop.is_set():
            with self._lock:
                idle = not self._faults
            if idle:
                self._kick.wait(1.0)
                self._kick.clear()
            elif self._stop.wait(0.01):
                break
            with self._lock:
                faults = list(self._faults.values())
            for fault in faults:
                try:
                    fault.scheduled.tick(time.monotonic() - fault.added_at)
                except Exception:
                    log.exception("fault %s could not change state", fault.label)
            if time.monotonic() - recorded_at >= 1.0:
                recorded_at = time.monotonic()
                if self.not_followed() != recorded:
                    recorded = self._record_unread()

    def _record_unread(self) -> dict[str, int]:
        """Put what passed unread in the capture now, so a kill -9 does not hide it (once a second)."""
        unread, ledger = self.not_followed(), self.ledger
        if ledger is not None:
            try:
                ledger.set_meta("proxy", json.dumps(self._proxy_meta()))
            except Exception as error:  # closing under us: close() writes it last anyway
                log.debug("proxy meta not recorded: %s", error)
        return unread

    # -- observation ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Requests, injections by type, connections, bytes, topology rewrites, capture counts."""
        counters = self.proxies.counters()
        injected: Counter[str] = Counter()
        requests = 0
        for fault in self.injector_summaries():  # removed faults still count
            requests = max(requests, fault["requests"])
            injected.update(fault["by_type"])
        capture = dict(self.capture.counts) if self.capture is not None else {}
        return {
            "mode": "tcp" if self.passthrough else "cql",
            "connections": counters.connections,
            "open_connections": counters.open_connections,
            "bytes_upstream": counters.bytes_upstream,
            "bytes_downstream": counters.bytes_downstream,
            "toxics_hit": counters.toxics_hit,
            "requests_seen_by_faults": requests,
            "injected": dict(injected),
            "topology": dict(self.counts),
            "not_followed": self.not_followed(),
            "compressed_connections": self._compressed_connections(),
            "capture": capture,
            "capture_backlog_bytes": self.capture_backlog_bytes(),
            "uptime_s": round(time.monotonic() - self._started, 1),
        }

    def not_followed(self) -> dict[str, int]:
        """What passed unread, so uncaptured and out of reach of protocol faults (0 when all is read).

        connections: streams relayed raw (not CQL, e.g. TLS; a CRC that did not match); refused:
        connections asking for a compression the proxy cannot read; frames: compressed envelopes
        that did not inflate; requests: writes whose body could not be decoded.
        """
        capture = self.capture.counts if self.capture is not None else Counter()
        unread = self.proxies.counters().connections if self.passthrough else 0  # --tcp: by design
        return {
            "connections": self.counts["connections_not_followed"] + unread,
            "refused": self.counts["compressed_connections_refused"],
            "frames": self.counts["compressed_frames_not_followed"],
            "requests": capture["compressed_requests_not_followed"] + capture["requests_not_read"],
        }

    def _compressed_connections(self) -> dict[str, int]:
        prefix = "compressed_connections_"
        return {
            k[len(prefix) :]: v
            for k, v in self.counts.items()
            if k.startswith(prefix) and k != prefix + "refused"
        }

    def _relay(self, node: Address, listen: Address) -> CqlRelay:
        capture = None
        if self.capture is not None:
            capture = self.capture.connection(f"{node[0]}:{node[1]}", self._toxic_labels)
        topology = Topology(self.addresses, node, self.counts)
        return CqlRelay(self.proxies.prepared, self.proxies.policies, topology=topology, capture=capture)

    def _toxic_labels(self) -> str | None:
        toxics = self.proxies.toxics()
        if not toxics:  # asked for every captured write
            return None
        labels = [t.label for t in toxics if t.label]
        return ", ".join(labels) or None


def _record_window(windows: list[dict[str, float | None]], window: FaultWindow) -> None:
    """Keep a fault window in wall-clock seconds (result.json readers compare with sent_at)."""
    now_wall, now_mono = time.time(), time.monotonic_ns()
    if window.end_ns is None:
        windows.append({"start": now_wall - (now_mono - window.start_ns) / 1e9, "end": None})
    elif windows:
        windows[-1]["end"] = now_wall - (now_mono - window.end_ns) / 1e9


def upstreams_of_profile(name: str) -> list[Address]:
    """The nodes a profile reaches: every node of its local cluster, else its contact points."""
    from astrachaos.config.settings import load_profile
    from astrachaos.run.targets import local_cluster_for

    profile = load_profile(name).profile
    if profile.kind == "astra":
        raise UsageProblem(
            "the proxy fronts nodes it can reach by address; Astra is reached through its secure bundle",
            hint="see README, Test your own application: TLS and Astra",
        )
    cluster = local_cluster_for(profile)
    hosts = list(cluster.contact_points) if cluster is not None else list(profile.contact_points)
    port = int(cluster.port) if cluster is not None else int(profile.port)
    return [(host, port) for host in hosts]


class SchemaSession:
    """The proxy's own driver session straight to the nodes (never through itself): system_schema."""

    def __init__(self, upstreams: Sequence[Address], profile: str | None) -> None:
        from astrachaos.config.settings import load_profile
        from astrachaos.driver.session import connect

        self._connection: Any = None
        self._cluster: Any = None
        if profile is not None:
            self._connection = connect(load_profile(profile).profile)
            self.session = self._connection.session
            return
        from cassandra.cluster import Cluster
        from cassandra.policies import RoundRobinPolicy

        try:
            self._cluster = Cluster(
                [host for host, _ in upstreams],
                port=upstreams[0][1],
                load_balancing_policy=RoundRobinPolicy(),
            )
            self.session = self._cluster.connect()
        except Exception as error:
            if self._cluster is not None:
                self._cluster.shutdown()
            raise EnvironmentProblem(
                f"the proxy cannot reach {upstreams[0][0]}:{upstreams[0][1]}: {error}"
            ) from None

    def close(self) -> None:
        """Close the session."""
        if self._connection is not None:
            self._connection.close()
        if self._cluster is not None:
            self._cluster.shutdown()


def serve(proxy: StandaloneProxy, duration_s: float | None, stop: threading.Event) -> None:
    """Keep the proxy up until `duration_s` passed or `stop` is set (a KeyboardInterrupt passes)."""
    deadline = None if duration_s is None else time.monotonic() + duration_s
    while not stop.is_set():
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return
        stop.wait(0.2 if left is None else min(0.2, left))
