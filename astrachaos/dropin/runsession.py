"""The session a user's own pattern writes through under `astrachaos run`.

The same session facade as `astrachaos.chaos()` — client faults on every write — but its
writes go through the run's throttler and resettable session, and each one is reported to the
run's event bus as the records it carries (by their `record_id` column), so the ledger, the
statistics and the verdict see a user's writer exactly as they see a built-in pattern.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from astrachaos.dropin.session import ChaosSession, Finish, Outgoing, Sender, build_request, send_request
from astrachaos.dropin.statements import RowWrite
from astrachaos.events import EventBus
from astrachaos.injectors.interface import ClientHooks
from astrachaos.workload.channel import completion

log = logging.getLogger(__name__)


class RecordObserver:
    """Publishes WriteCompleted for the run-table records a statement carries."""

    def __init__(self, bus: EventBus, keyspace: str, table: str) -> None:
        self._bus = bus
        self._where = (keyspace, table)
        self._attempts: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._warned = False

    def sent(
        self, rows: list[RowWrite], timestamp_us: int | None, injected: str | None
    ) -> tuple[tuple[int, ...], int, int]:
        """The record ids, the attempt number and the send time of one statement."""
        ids = tuple(
            int(row.values["record_id"])
            for row in rows
            if (row.keyspace, row.table) == self._where and row.values.get("record_id") is not None
        )
        if len(ids) < len(rows) and not self._warned:
            self._warned = True
            log.warning("a pattern wrote rows without the run table's record_id; they are not judged")
        with self._lock:
            self._attempts.update(ids)
            attempt = max((self._attempts[i] for i in ids), default=1)
        return ids, attempt, time.monotonic_ns()

    def answered(self, token: tuple[tuple[int, ...], int, int], error: BaseException | None) -> None:
        """The driver's (or an injector's) word on those records."""
        ids, attempt, submitted = token
        if not ids:
            return
        self._bus.publish(completion(ids, attempt, submitted, error))


def throttled_sender(sessions: Any) -> Sender:
    """Send through the run's current session behind its throttler (queue, refusal, release)."""

    def send(query: Any, parameters: Any, options: dict[str, Any], skew_us: int) -> Outgoing:
        live = sessions.current()
        session = live.connection.session
        throttler = live.throttled.throttler
        real = build_request(session, query, parameters, options, skew_us)

        def go(finish: Finish) -> None:
            def release_then(answer: Any, error: BaseException | None) -> None:
                throttler.release()
                finish(answer, error)

            def start() -> None:
                try:
                    send_request(session, real)
                except Exception as error:  # refused by a closing session: never sent
                    release_then(None, error)
                    return
                real.add_callbacks(lambda rows: release_then(rows, None), lambda e: release_then(None, e))

            throttler.submit(start, lambda error: finish(None, error))

        return Outgoing(real, getattr(real.message, "timestamp", None), go)

    return send


class CurrentSession:
    """The run's current driver session, whatever session resets happened since."""

    def __init__(self, sessions: Any) -> None:
        self._sessions = sessions

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sessions.current().connection.session, name)


class AppSessions:
    """One facade session per writer of a user pattern, and the wait for their answers."""

    def __init__(self, sessions: Any, hooks: ClientHooks, bus: EventBus, keyspace: str, table: str) -> None:
        self._sessions = sessions
        self._hooks = hooks
        self._observer = RecordObserver(bus, keyspace, table)
        self._opened: list[ChaosSession] = []
        self._lock = threading.Lock()

    def open(self, writer: int) -> ChaosSession:
        """The session writer `writer`'s application uses."""
        session = ChaosSession(
            CurrentSession(self._sessions),
            self._hooks,
            self._observer,
            sender=throttled_sender(self._sessions),
            writer=writer,
        )
        with self._lock:
            self._opened.append(session)
        return session

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every write of every writer is answered."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            opened = list(self._opened)
        return all(s.wait_idle(max(0.0, deadline - time.monotonic())) for s in opened)

    @property
    def in_flight(self) -> int:
        """Writes not answered yet, over all writers."""
        with self._lock:
            return sum(s.in_flight for s in self._opened)
