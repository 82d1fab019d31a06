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
from astrachaos.driver.resettable import ResettableSession
from astrachaos.driver.table import RunTable, ensure_table
from astrachaos.events import EventBus
from astrachaos.injectors.active import ActiveInjectors
from astrachaos.ledger.writer import Ledger
from astrachaos.scenario import Scenario
from astrachaos.verify.partitions import Verification, verify_run_table
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
        """Read this side's table back and classify every record of its ledger."""
        session = self.sessions.current().connection.session
        return verify_run_table(session, self.table, run_id, self.ledger, scenario, started_ns)


@contextmanager
def open_side(plan: SidePlan, scenario: Scenario, run_id: str, meta: dict[str, str]) -> Iterator[Side]:
    """Prepare the injectors (a proxy may change how to connect), connect, make the table, create
    the ledger and the write channel; on exit close the ledger, the session and the injectors'
    proxies (each step logged, never raised, so one failure does not keep the others open)."""
    from astrachaos.driver.session import connect

    with ExitStack() as opened:
        opened.callback(_quietly, plan.name, plan.injectors.close)
        overrides = plan.injectors.prepare()
        extra: dict[str, Any] = {}
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
        yield Side(plan, sessions, ledger, channel, stats, bus)


def _quietly(side: str, close: Any) -> None:
    try:
        close()
    except Exception:  # closing one part must not keep the others open
        log.exception("closing side %s failed", side)
