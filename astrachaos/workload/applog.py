"""The simulated application's own log (JSON lines, like a real app's) and its AppLogged events.

Lines are queued by the thread that logs (a writer, or a session's completion thread) and written
in bulk by the log's own thread: no thread waits on the file, nor on another thread writing it.
Each write is whole lines to a file opened for appending, so writer processes share one log.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from astrachaos.events import AppLogged, EventBus
from astrachaos.workload.plan import PlannedRecord

log = logging.getLogger(__name__)
_FLUSH_INTERVAL_S = 0.05


class ApplicationLog:
    """What the application claims: one JSON line per batch or failure, plus AppLogged events."""

    def __init__(self, path: Path, bus: EventBus, pattern: str) -> None:
        self.path = path
        self._bus = bus
        self._pattern = pattern
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lines: deque[str] = deque()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._write_lines, name="app-log", daemon=True)
        self._thread.start()

    def success(self, records: Sequence[PlannedRecord], message: str, **fields: Any) -> None:
        """The application logs these records as stored (whether or not they are)."""
        self._emit("info", message, records, fields)
        self._publish(records, success=True)

    def failure(
        self, records: Sequence[PlannedRecord], message: str, level: str = "error", **fields: Any
    ) -> None:
        """The application logs these records as not stored, at `level` (debug is hidden in prod)."""
        self._emit(level, message, records, fields)
        self._publish(records, success=False)

    def note(self, level: str, message: str, **fields: Any) -> None:
        """A log line about no record in particular."""
        self._emit(level, message, (), fields)

    def close(self) -> None:
        """Write what is queued, then close the log file."""
        self._closing.set()
        self._thread.join()
        os.close(self._fd)

    def _publish(self, records: Sequence[PlannedRecord], success: bool) -> None:
        ids = tuple([p.record.record_id for p in records])
        self._bus.publish(AppLogged(record_ids=ids, success=success, at_ns=time.monotonic_ns()))

    def _emit(
        self, level: str, message: str, records: Sequence[PlannedRecord], fields: dict[str, Any]
    ) -> None:
        line: dict[str, Any] = {
            "ts": time.time(),
            "level": level,
            "logger": f"app.{self._pattern}",
            "msg": message,
            **fields,
        }
        if records:
            line["count"] = len(records)
            line["keys"] = [[p.record.bucket, p.record.key] for p in records]
            line["record_ids"] = [p.record.record_id for p in records]
        self._lines.append(json.dumps(line, ensure_ascii=False, default=str))

    def _write_lines(self) -> None:
        lines = self._lines
        while True:
            closing = self._closing.wait(_FLUSH_INTERVAL_S)
            try:
                while lines:
                    chunk = [lines.popleft() for _ in range(min(len(lines), 2000))]
                    data = ("\n".join(chunk) + "\n").encode("utf-8")
                    while data:  # one append of whole lines (a short write is finished at once)
                        data = data[os.write(self._fd, data) :]
            except OSError:  # a full disk must not stop the run; the ledger holds the truth
                log.exception("the application log could not be written")
                lines.clear()
            if closing:
                return
