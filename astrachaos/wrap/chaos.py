"""`astrachaos.chaos(session, faults=..., out=DIR)`: a user's own session under client faults.

The wrapped session records every write in a capture ledger in `out` (the same ledger the
proxy writes); `verify()` reads every written key back and classifies each write exactly as
`astrachaos verify --capture` does, writing `out/result.json`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from astrachaos.capture.ledger import CaptureLedger, capture_file
from astrachaos.capture.verify import Claims, verify_capture
from astrachaos.dropin.session import ChaosSession, SessionStats
from astrachaos.injectors.active import ActiveInjectors
from astrachaos.wrap.applog import AppLog
from astrachaos.wrap.faults import FaultLike, ManualControls, fault_specs
from astrachaos.wrap.recorder import CaptureRecorder
from astrachaos.wrap.verdict import Verdict

log = logging.getLogger(__name__)
DRAIN_S = 30.0
COMMIT_S = 0.02  # commit the capture in batches: fewer GIL hand-offs to the ledger thread


@dataclass(frozen=True)
class ChaosStats:
    """The seed's getStats: writes seen, writes injected, their rate, and by type."""

    requests: int
    injected: int
    rate: float
    by_type: dict[str, int]


class Chaos:
    """A user's driver session under faults, with every write captured; use as a context manager."""

    def __init__(
        self,
        session: Any,
        faults: Iterable[FaultLike] | FaultLike | None = None,
        out: str | Path | None = None,
        *,
        seed: int | None = None,
        settle_s: float = 1.0,
    ) -> None:
        specs = fault_specs(faults)  # validated before anything is opened
        self.out = Path(out) if out is not None else default_out()
        if capture_file(self.out).exists():  # evidence of an earlier capture is never mixed in
            raise FileExistsError(f"{self.out} already holds a capture; give each capture its own `out`")
        self.settle_s = settle_s
        self.seed = seed if seed is not None else random.randrange(2**31)  # pass it to repeat the faults
        self._real = session
        meta = {"front_door": "python", "pid": str(os.getpid()), "seed": str(self.seed)}
        self._ledger = CaptureLedger(self.out, meta=meta, commit_interval_s=COMMIT_S)
        self._stats = SessionStats()
        self._controls = ManualControls(self.seed)
        self._injectors = ActiveInjectors(specs, None, None, self.seed)
        self._injectors.client_hooks.add(self._controls.decide)
        self._injectors.attach_session_reset(lambda: reset_connections(session))
        self.app_log = AppLog(self.out / "app-log.jsonl")
        self.session = ChaosSession(
            session, self._injectors.client_hooks, CaptureRecorder(self._ledger, session), self._stats
        )
        self._faults_on = True
        self._closed = False
        self._injectors.start()

    # -- the seed's controls ------------------------------------------------------------------

    def set_level(self, probability: float) -> None:
        """Affect this fraction of writes (0..1) with the current mode; above 0 enables."""
        self._controls.set_level(probability)

    def set_mode(self, mode: str, *, latency_ms: float | None = None, skew_ms: float | None = None) -> None:
        """fail, latency, latency-after, applied-then-error, drop or clock-skew."""
        self._controls.set_mode(mode, latency_ms=latency_ms, skew_ms=skew_ms)

    def set_failure(self, failure: str | BaseException | type[BaseException]) -> None:
        """The error `fail` raises: a driver error name (`"Unavailable"`), a class or an instance."""
        self._controls.set_failure(failure)

    def enable(self) -> None:
        """Turn the controls on (at the current level)."""
        self._controls.enabled = True

    def disable(self) -> None:
        """Turn the controls off (scheduled `faults` keep their schedule)."""
        self._controls.enabled = False

    def stats(self) -> ChaosStats:
        """Writes seen and injected since the start or the last `reset_stats`."""
        stats = self._stats
        with stats.lock:
            requests, injected, by_type = stats.requests, stats.injected, dict(stats.by_type)
        return ChaosStats(requests, injected, injected / requests if requests else 0.0, by_type)

    def reset_stats(self) -> None:
        """Start counting again."""
        self._stats.reset()

    # -- verdict ------------------------------------------------------------------------------

    def stop_faults(self) -> None:
        """Roll back every scheduled fault and turn the controls off (idempotent)."""
        if not self._faults_on:
            return
        self._faults_on = False
        self._controls.enabled = False
        self._injectors.finish()

    def verify(self, app_log: AppLog | Claims | None = None, *, settle_s: float | None = None) -> Verdict:
        """Stop the faults, wait for answers, read every written key back, classify each write.

        `app_log` (default: `self.app_log` when something was logged in it) adds the app's own
        claims: keys logged as stored that are not in the table are `silent`.
        """
        self.stop_faults()
        if not self.session.wait_idle(DRAIN_S):
            log.warning("%d writes still unanswered after %.0f s", self.session.in_flight, DRAIN_S)
        wait_usable(self._real, DRAIN_S)  # after a session-reset the driver reconnects first
        self._ledger.set_meta("injectors", json.dumps(self._injector_stats()))
        self._ledger.flush()
        claims = app_log.claims() if isinstance(app_log, AppLog) else app_log
        if app_log is None:
            claims = self.app_log.claims()
        settle = self.settle_s if settle_s is None else settle_s
        result = verify_capture(self.out, self._real, claims, self.out, settle_s=settle)
        return Verdict(result, self.out, self.seed)

    def close(self) -> None:
        """Roll back the faults and close the capture ledger (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop_faults()
        finally:
            self.session.wait_idle(DRAIN_S)
            self._ledger.close()

    def __enter__(self) -> Chaos:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _injector_stats(self) -> list[dict[str, Any]]:
        stats = [asdict(s) for s in self._injectors.stats()]
        own = self.stats()
        stats.append(
            {"name": "session", "kind": "client", "requests": own.requests, "injected": own.injected,
             "by_type": own.by_type}
        )  # fmt: skip
        return stats


def chaos(
    session: Any,
    faults: Iterable[FaultLike] | FaultLike | None = None,
    out: str | Path | None = None,
    *,
    seed: int | None = None,
    settle_s: float = 1.0,
) -> Chaos:
    """Wrap a driver `Session`: `with astrachaos.chaos(session, faults=[...], out="runs/x") as c:`.

    Use `c.session` wherever the code uses its session; then `c.verify().assert_no_loss()`.
    """
    return Chaos(session, faults, out, seed=seed, settle_s=settle_s)


def default_out() -> Path:
    """runs/<UTC time>-chaos-<pid>: a directory of its own for each capture."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return Path("runs") / f"{stamp}-chaos-{os.getpid()}-{time.monotonic_ns() % 1_000_000:06d}"


def wait_usable(session: Any, timeout_s: float) -> None:
    """Wait until the session answers a read again (the driver reconnects after a reset)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            session.execute("SELECT release_version FROM system.local")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def reset_connections(session: Any) -> None:
    """Close every connection of the session under its in-flight requests (session-reset).

    The driver fails what was in flight with ConnectionShutdown, marks the hosts down and
    reconnects on its own: what an application sees when its session is reset mid-stream.
    """
    from cassandra.connection import ConnectionShutdown

    for pool in list(getattr(session, "_pools", {}).values()):
        connections = [getattr(pool, "_connection", None), *getattr(pool, "_connections", [])]
        for connection in connections:
            if connection is not None:
                connection.defunct(ConnectionShutdown("session reset by astrachaos"))
