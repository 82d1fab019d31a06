"""The simulated application's own log (JSON lines, like a real app's) and its AppLogged events."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from astrachaos.events import AppLogged, EventBus
from astrachaos.workload.plan import PlannedRecord


class ApplicationLog:
    """What the application claims: one JSON line per batch or failure, plus AppLogged events."""

    def __init__(self, path: Path, bus: EventBus, pattern: str) -> None:
        self.path = path
        self._bus = bus
        self._pattern = pattern
        self._file: IO[str] = path.open("a", encoding="utf-8", buffering=1 << 16)
        self._lock = threading.Lock()

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
        """Flush and close the log file."""
        with self._lock:
            self._file.close()

    def _publish(self, records: Sequence[PlannedRecord], success: bool) -> None:
        ids = tuple(p.record.record_id for p in records)
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
        text = json.dumps(line, ensure_ascii=False, default=str)
        with self._lock:
            self._file.write(text + "\n")
