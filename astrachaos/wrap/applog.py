"""What the application believes it stored: claims a verdict checks for silent loss."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from astrachaos.capture.verify import Claims
from astrachaos.reconcile.keyfile import KeyFormat, KeySpec
from astrachaos.reconcile.schema import encode


class AppLog:
    """A JSON-lines log of the keys the application says it stored (`stored`) or failed to.

    Call `stored("ks.table", id=1)` where your code would log success; `verify` then marks every
    such key that is not in the table as written `silent` (or `never_sent` when no write for it
    ever left the session).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._tables: set[str] = set()
        self._columns: dict[str, tuple[str, ...]] = {}

    def stored(self, table: str, **key: Any) -> None:
        """The application logs this key of `keyspace.table` as stored."""
        self._write("stored", table, key)

    def failed(self, table: str, **key: Any) -> None:
        """The application logs this key as not stored (an honest failure: not a claim)."""
        self._write("failed", table, key)

    def claims(self) -> Claims | None:
        """The claims for verification (None: nothing was logged as stored)."""
        with self._lock:
            stored = [t for t in self._tables if t in self._columns]
        if not stored:
            return None
        if len(stored) > 1:
            raise ValueError(f"an app log can claim keys of one table; this one has {sorted(stored)}")
        keyspace, _, table = stored[0].partition(".")
        spec = KeySpec(
            columns=self._columns[stored[0]],
            format=KeyFormat.JSONL,
            key_path="key",
            match={"event": "stored", "table": stored[0]},
        )
        return Claims(self.path, spec, keyspace, table)

    def _write(self, event: str, table: str, key: dict[str, Any]) -> None:
        if table.count(".") != 1:
            raise ValueError(f"table must be 'keyspace.table', not {table!r}")
        encoded = {c: encode(v) for c, v in key.items()}
        line = {"ts": time.time(), "event": event, "table": table, "key": encoded}
        text = json.dumps(line, ensure_ascii=False)
        with self._lock:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(text + "\n")
            if event == "stored":
                self._tables.add(table)
                self._columns.setdefault(table, tuple(sorted(key)))
