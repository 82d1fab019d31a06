"""The injectors of one run: built before connecting, scheduled, always rolled back in reverse."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Sequence
from typing import Any

from astrachaos.errors import EnvironmentProblem, RollbackFailed
from astrachaos.events import EventBus, FaultsActive, FaultWindow
from astrachaos.injectors.interface import (
    ClientHooks,
    ConnectOverrides,
    Injector,
    InjectorContext,
    InjectorStats,
)
from astrachaos.injectors.registry import lookup
from astrachaos.injectors.schedule import ScheduledFault, Scheduler
from astrachaos.scenario import InjectorSpec

log = logging.getLogger(__name__)


class ActiveInjectors:
    """Every injector of a run and its schedule; `finish` rolls all back, newest first."""

    def __init__(
        self,
        specs: Sequence[InjectorSpec],
        profile: Any,
        local_cluster: Any | None,
        random_seed: int,
        ledger: Any | None = None,
        events: EventBus | None = None,
    ) -> None:
        self.client_hooks = ClientHooks()
        self._events = events or EventBus()  # FaultsActive each time a fault is applied or removed
        self._ledger = ledger
        self.injectors: list[Injector] = []
        self.contexts: list[InjectorContext] = []
        self._faults: list[ScheduledFault] = []
        for index, spec in enumerate(specs):
            factory = lookup(spec.name)
            params = factory.Params.model_validate(spec.params)
            rng = random.Random(random_seed * 7919 + index)
            context = InjectorContext(
                profile=profile,
                local_cluster=local_cluster,
                client_hooks=self.client_hooks,
                rng=rng,
                probability=spec.schedule.probability,
            )
            self.contexts.append(context)
            try:
                injector = factory(params, context)
            except Exception as error:
                raise EnvironmentProblem(f"injector {spec.name!r} cannot be set up: {error}") from None
            self.injectors.append(injector)
            self._faults.append(
                ScheduledFault(
                    spec.name,
                    injector.apply,
                    injector.rollback,
                    spec.schedule,
                    rng,
                    self._window_recorder(),
                    injector.kind,
                )
            )
        self._scheduler = Scheduler(self._faults)
        # finish may run on a signal's rollback thread and on the main thread: one at a time.
        self._finish_lock = threading.Lock()

    def attach_session_reset(self, reset: Callable[[], None]) -> None:
        """Let injectors reset the application's session (requests in flight are cut off)."""
        for context in self.contexts:
            context.reset_session = reset

    def attach_ledger(self, ledger: Any) -> None:
        """Record fault windows in `ledger` from now on."""
        self._ledger = ledger

    def prepare(self) -> ConnectOverrides | None:
        """Prepare every injector; at most one may change how the driver connects."""
        overrides: ConnectOverrides | None = None
        for injector in self.injectors:
            try:
                wanted = injector.prepare()
            except Exception as error:
                raise EnvironmentProblem(f"injector {injector.name!r} cannot be prepared: {error}") from None
            if wanted is not None:
                if overrides is not None:
                    raise EnvironmentProblem("two injectors want to change how the driver connects")
                overrides = wanted
        return overrides

    def start(self) -> None:
        """Start the schedules (the write phase begins)."""
        log.debug("fault schedules start: %s", ", ".join(f.name for f in self._faults) or "none")
        self._scheduler.start()

    def check(self) -> None:
        """Raise if an injector failed to apply during the run."""
        if self._scheduler.error is not None:
            raise EnvironmentProblem(f"a fault could not be applied: {self._scheduler.error}")

    def finish(self) -> None:
        """Stop the schedules and roll back every applied fault, newest first.

        Every rollback is attempted even when one fails; failures end in RollbackFailed (exit 6)
        naming what may still be active. Proxies stay up (pass-through) until `close`, so the
        driver can still read through them during verification.
        """
        with self._finish_lock:
            self._scheduler.stop()
            failed: list[str] = []
            for fault in reversed(self._faults):
                log.debug("rolling back %s", fault.name)
                try:
                    fault.end()
                except Exception as error:
                    log.exception("rollback of %s failed", fault.name)
                    failed.append(f"{fault.name} ({type(error).__name__}: {error})")
        if failed:
            raise RollbackFailed(
                "rollback failed; these faults may still be active: " + "; ".join(failed),
                hint="check the local cluster (`astrachaos local status`) and restart what is down",
            )

    def close(self) -> None:
        """Release what the injectors set up (proxies), newest first; after the session is closed."""
        for injector in reversed(self.injectors):
            try:
                injector.close()
            except Exception:  # a proxy that will not stop must not hide the run's result
                log.exception("closing %s failed", injector.name)

    def stats(self) -> list[InjectorStats]:
        """Each injector's statistics."""
        return [injector.stats() for injector in self.injectors]

    def windows(self) -> list[FaultWindow]:
        """Every fault window, injector by injector."""
        return [window for fault in self._faults for window in fault.windows]

    def _window_recorder(self) -> Callable[[FaultWindow], None]:
        ids: dict[int, int] = {}  # start_ns -> the ledger's window id, for this injector

        def record(window: FaultWindow) -> None:
            self._events.publish(FaultsActive(tuple(f.name for f in self._faults if f.applied)))
            if self._ledger is None:
                return
            if window.start_ns not in ids:
                ids[window.start_ns] = self._ledger.record_fault_window(window)
            elif window.end_ns is not None:
                self._ledger.end_fault_window(ids[window.start_ns], window.end_ns)

        return record
