"""One target of a run: its profile, table, injectors, session, ledger and write channel."""

from __future__ import annotations

import logging
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
class Side:
    """A target the application writes to; a run has one, or two for a dual write."""

    name: str
    profile: Profile
    table: RunTable
    injectors: ActiveInjectors
    ledger_path: Path
    sessions: ResettableSession | None = None
    ledger: Ledger | None = None
    channel: WriteChannel | None = None
    stats: WriteStats | None = None
    bus: EventBus = field(default_factory=EventBus)

    def connect(self, replication_factor: int) -> None:
        """Prepare the injectors (a proxy may change how to connect), connect, make the table."""
        from astrachaos.driver.session import connect

        overrides = self.injectors.prepare()
        extra: dict[str, Any] = {}
        if overrides is not None:
            extra = {"contact_points": overrides.contact_points, "port": overrides.port}
            if overrides.address_translator is not None:
                extra["address_translator"] = overrides.address_translator
        profile = self.profile
        self.sessions = ResettableSession(lambda: connect(profile, **extra))
        self.injectors.attach_session_reset(self.sessions.reset_in_background)
        ensure_table(
            self.sessions.current().connection.session,
            self.table,
            replication_factor,
            astra=profile.kind == "astra",
        )

    def open_ledger(self, run_id: str, meta: dict[str, str]) -> Ledger:
        """Create this side's ledger and record fault windows in it."""
        self.ledger = Ledger.create(self.ledger_path, run_id, {**meta, "side": self.name})
        self.ledger.subscribe(self.bus)
        self.injectors.attach_ledger(self.ledger)
        return self.ledger

    def make_channel(self, scenario: Scenario, run_id: str, started_ns: int) -> WriteChannel:
        """The instrumented write path to this side, with its statistics and client hooks."""
        assert self.sessions is not None
        self.stats = WriteStats()
        self.stats.subscribe(self.bus)
        self.channel = WriteChannel(
            self.sessions,
            self.table,
            run_id,
            scenario.workload.statement,
            scenario.schema_.ttl_s,
            scenario.schema_.buckets,
            self.bus,
            idempotent=True,
            request_timeout_s=self.request_timeout_s,
        )
        self.channel.hooks = self.injectors.client_hooks
        return self.channel

    @property
    def request_timeout_s(self) -> float:
        """The driver's request timeout on this side."""
        return self.profile.driver.request_timeout_ms / 1000

    def verify(self, scenario: Scenario, run_id: str, started_ns: int) -> Verification:
        """Read this side's table back and classify every record of its ledger."""
        assert self.sessions is not None and self.ledger is not None
        session = self.sessions.current().connection.session
        return verify_run_table(session, self.table, run_id, self.ledger, scenario, started_ns)

    def close(self) -> None:
        """Close the ledger and the session; release the injectors' proxies. Never raises."""
        for step in (self._close_ledger, self._close_sessions, self.injectors.close):
            try:
                step()
            except Exception:  # closing one part must not keep the others open
                log.exception("closing side %s failed", self.name)

    def _close_ledger(self) -> None:
        if self.ledger is not None:
            self.ledger.close()

    def _close_sessions(self) -> None:
        if self.sessions is not None:
            self.sessions.close()
