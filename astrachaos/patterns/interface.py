"""What every application pattern is given and must provide.

A pattern is registered in the entry-point group `astrachaos.patterns` (the four built-ins are
registered the same way) or named `package.module:attribute` in a scenario's `pattern.name`. The
registered object is a factory: called once per writer with a `PatternContext`, it returns an
`AppPattern`. Built-ins write through `ctx.channel`; a team's own writer code uses
`ctx.session` (a drop-in driver Session whose writes the run engine sees), `ctx.insert_cql` and
`ctx.values(record)`, and logs what it believes with `ctx.log.success/failure`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from astrachaos.scenario import Pattern
from astrachaos.workload.application import AppPattern
from astrachaos.workload.applog import ApplicationLog
from astrachaos.workload.channel import Channel
from astrachaos.workload.plan import PlannedRecord

__all__ = ["AppPattern", "PatternContext", "SharedAppState", "all_of"]

INSERT_COLUMNS = ("run_id", "bucket", "key", "record_id", "writer", "batch_no", "payload")


@dataclass
class SharedAppState:
    """State the writers of one application share (the seed's uploader had a global flag)."""

    warned: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first_warning(self) -> bool:
        """True exactly once: the 'already warned' flag that hides every later failure."""
        with self.lock:
            if self.warned:
                return False
            self.warned = True
            return True


@dataclass
class PatternContext:
    """What a pattern works with: the driver path, its own log, its knobs, retry policy."""

    channel: Channel
    log: ApplicationLog
    spec: Pattern
    shared: SharedAppState
    writer: int
    retry_delay_s: Callable[[int], float]  # backoff before attempt n+1
    is_retryable: Callable[[BaseException], bool]
    table: str = ""  # keyspace.table of the run's records
    run_id: str = ""
    session_factory: Callable[[], Any] | None = None
    _session: Any = field(default=None, repr=False)

    @property
    def session(self) -> Any:
        """A drop-in driver Session for this writer: its writes reach the ledger and the faults.

        Opened on first use (built-in patterns never use it).
        """
        if self._session is None:
            if self.session_factory is None:
                raise RuntimeError("this run offers no session to the pattern (a dual write?)")
            self._session = self.session_factory()
        return self._session

    @property
    def insert_cql(self) -> str:
        """The insert of one record: `INSERT INTO <table> (run_id, ..., payload) VALUES (?, ...)`."""
        markers = ", ".join("?" for _ in INSERT_COLUMNS)
        return f"INSERT INTO {self.table} ({', '.join(INSERT_COLUMNS)}) VALUES ({markers})"

    def values(self, planned: PlannedRecord) -> tuple[Any, ...]:
        """The values of `insert_cql` for one record, in its column order."""
        record = planned.record
        return (self.run_id, record.bucket, record.key, record.record_id, record.writer, record.batch,
                planned.payload)  # fmt: skip


def all_of(futures: Sequence[Future[None]]) -> Future[None]:
    """A future done when every future is; it fails with the first error seen (whole-batch)."""
    combined: Future[None] = Future()
    if not futures:
        combined.set_result(None)
        return combined
    remaining = [len(futures)]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one_done(future: Future[None]) -> None:
        error = future.exception()
        with lock:
            if error is not None:
                errors.append(error)
            remaining[0] -= 1
            last = remaining[0] == 0
        if last:
            if errors:
                combined.set_exception(errors[0])
            else:
                combined.set_result(None)

    for future in futures:
        future.add_done_callback(one_done)
    return combined
