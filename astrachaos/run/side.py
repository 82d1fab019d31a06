"""One target of a run: planned (profile, table, injectors), then opened fully connected.

`open_side` is the only way to get a `Side`: it yields one whose session, table, ledger and
write channel all exist, and closes every part it opened, in reverse, whatever happens.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astrachaos.config.settings import Profile
from astrachaos.driver.hosts import HostDown
from astrachaos.driver.resettable import ResettableSession
from astrachaos.driver.table import RunTable, ensure_table
from astrachaos.events import EventBus, FaultWindow
from astrachaos.injectors.active import ActiveInjectors
from astrachaos.ledger.writer import Ledger
from astrachaos.scenario import Scenario
from astrachaos.verify.connection import verify_run_table
from astrachaos.verify.partitions import Verification
from astrachaos.workload.channel import WriteChannel
from astrachaos.workload.stats import WriteStats

log = logging.getLogger(__name__)


@dataclass
class SidePlan:
    """A target the application will write to (one, or two for a dual write), not yet opened."""

    name: str
    profile: Profile
    table: RunTable
    injectors: ActiveInjectors
    ledger_path: Path

    @property
    def request_timeout_s(self) -> float:
        """The driver's request timeout on this side."""
        return self.profile.driver.request_timeout_ms / 1000


@dataclass
class Side:
    """An opened target: connected session, its table made, its ledger and write channel ready."""

    plan: SidePlan
    sessions: ResettableSession
    ledger: Ledger
    channel: WriteChannel
    stats: WriteStats
    bus: EventBus = field(default_factory=EventBus)
    connect_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """`primary` or `secondary`."""
        return self.plan.name

    @property
    def profile(self) -> Profile:
        """The profile this side writes through (with the scenario's driver options)."""
        return self.plan.profile

    @property
    def table(self) -> RunTable:
        """The run table this side writes."""
        return self.plan.table

    @property
    def injectors(self) -> ActiveInjectors:
        """The faults of this side."""
        return self.plan.injectors

    def verify(self, scenario: Scenario, run_id: str, started_ns: int) -> Verification:
        """Read this side's table back with a Cluster of its own; classify every record."""
        return verify_run_table(self.profile, self.table, run_id, self.ledger, scenario, started_ns)

    def host_downs(self) -> list[HostDown]:
        """Every time the driver marked a host of this side down, over every session opened."""
        downs = [d for live in self.sessions.all_sessions() for d in live.connection.hosts.downs()]
        return sorted(downs, key=lambda d: d.down_ns)

    def record_host_downs(self, origin_ns: int) -> list[str]:
        """Put the driver's host downs in the ledger as fault windows; one note for each."""
        notes = []
        for down in self.host_downs():
            self.ledger.record_fault_window(
                FaultWindow(f"driver: {down.address} down", "host-down", down.down_ns, down.up_ns)
            )
            notes.append(f"{self.name}: {down.describe(origin_ns)}")
        return notes


@contextmanager
def open_side(
    plan: SidePlan,
    scenario: Scenario,
    run_id: str,
    meta: dict[str, str],
    connect_to: dict[str, Any] | None = None,
) -> Iterator[Side]:
    """Prepare the injectors (a proxy may change how to connect), connect, make the table, create
    the ledger and the write channel; on exit close the ledger, the session and the injectors'
    proxies (each step logged, never raised, so one failure does not keep the others open).

    `connect_to`: contact points and port another process's injectors said to connect to."""
    from astrachaos.driver.session import connect

    with ExitStack() as opened:
        opened.callback(_quietly, plan.name, plan.injectors.close)
        overrides = plan.injectors.prepare()
        extra: dict[str, Any] = dict(connect_to or {})
        if overrides is not None:
            extra = {"contact_points": overrides.contact_points, "port": overrides.port}
            if overrides.address_translator is not None:
                extra["address_translator"] = overrides.address_translator
        profile = plan.profile
        sessions = ResettableSession(lambda: connect(profile, **extra))
        opened.callback(_quietly, plan.name, sessions.close)
        plan.injectors.attach_session_reset(sessions.reset_in_background)
        ensure_table(
            sessions.current().connection.session,
            plan.table,
            scenario.schema_.replication_factor,
            astra=profile.kind == "astra",
        )
        ledger = Ledger.create(plan.ledger_path, run_id, {**meta, "side": plan.name})
        opened.callback(_quietly, plan.name, ledger.close)
        bus = EventBus()
        ledger.subscribe(bus)
        plan.injectors.attach_ledger(ledger)
        stats = WriteStats()
        stats.subscribe(bus)
        channel = WriteChannel(
            sessions,
            plan.table,
            run_id,
            scenario.workload.statement,
            scenario.schema_.ttl_s,
            scenario.schema_.buckets,
            bus,
            idempotent=True,
            request_timeout_s=plan.request_timeout_s,
        )
        channel.hooks = plan.injectors.client_hooks
        yield Side(plan, sessions, ledger, channel, stats, bus, extra)


def _quietly(side: str, close: Any) -> None:
    try:
        close()
    except Exception:  # closing one part must not keep the others open
        log.exception("closing side %s failed", side)
