"""A session the application can reset mid-stream, with requests still in flight on the old one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class LiveSession:
    """One open connection plus the prepared statements made on it."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.throttled = connection.throttled
        self._prepared: dict[str, Any] = {}
        self._lock = threading.Lock()

    def prepared(self, cql: str) -> Any:
        """The prepared statement for `cql` on this session (prepared once)."""
        statement = self._prepared.get(cql)
        if statement is None:
            with self._lock:
                statement = self._prepared.get(cql)
                if statement is None:
                    statement = self.connection.session.prepare(cql)
                    self._prepared[cql] = statement
        return statement

    def batch(self, logged: bool) -> Any:
        """An empty batch statement of the right type."""
        from cassandra.query import BatchStatement, BatchType

        return BatchStatement(batch_type=BatchType.LOGGED if logged else BatchType.UNLOGGED)


class ResettableSession:
    """Holds the current session; `reset()` opens a new one and closes the old under load."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._current = LiveSession(connect())
        self._retired: list[LiveSession] = []
        self._threads: list[threading.Thread] = []
        self.resets = 0

    def current(self) -> LiveSession:
        """The session new requests go to."""
        return self._current

    def reset(self) -> None:
        """Open a fresh session, switch to it, and shut the old one down without draining it."""
        old = self._current
        self._current = LiveSession(self._connect())
        self.resets += 1
        self._retired.append(old)
        old.connection.close()

    def reset_in_background(self) -> None:
        """Reset from another thread, as an application's reload handler would."""
        thread = threading.Thread(target=self.reset, name="session-reset", daemon=True)
        self._threads.append(thread)
        thread.start()

    def wait_resets(self) -> None:
        """Wait for background resets to finish (before draining and verifying)."""
        for thread in self._threads:
            thread.join()

    def all_sessions(self) -> list[LiveSession]:
        """Every session opened so far (for throttler statistics)."""
        return [*self._retired, self._current]

    def close(self) -> None:
        """Close the current session."""
        self._current.connection.close()
