"""Child process for test_ledger_crash: writes to a ledger forever, printing what is committed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from astrachaos.events import AppLogged, DriverOutcome, EventBus, Record, RecordsPlanned, WriteCompleted
from astrachaos.ledger.writer import Ledger


def main(path: Path, per_flush: int) -> None:
    """Publish planned + acked + app-logged records; after each flush print the last committed id."""
    ledger = Ledger.create(path, "crash", {"scenario": "kill"})
    bus = EventBus()
    ledger.subscribe(bus)
    record_id = 0
    while True:
        # Several thousand events between flushes: the writer also commits on its own meanwhile.
        for _ in range(per_flush):
            now = time.monotonic_ns()
            bus.publish(
                RecordsPlanned((Record(record_id, 0, record_id, record_id % 8, record_id, "d"),), now)
            )
            bus.publish(WriteCompleted((record_id,), DriverOutcome.ACKED, 1, now, now + 1))
            bus.publish(AppLogged((record_id,), True, now + 2))
            record_id += 1
        ledger.flush()
        print(record_id - 1, flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
