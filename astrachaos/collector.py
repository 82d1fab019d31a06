"""Python's cyclic garbage collector, kept out of the way of a hot phase.

A write phase, a verification and the proxy each allocate a few dozen objects per record and free
them by reference counting (the driver's futures and ours hold no cycles once answered: see
`driver.throttled`). The collector does not know that. At its default threshold it runs a young
pass every 700 allocations, promotes the requests in flight at that moment, and soon walks the
whole heap (the driver's schema metadata, the record plan, every module) in a full pass, with
the GIL held: every thread of the process stops. In the bench's 60,000-record run that was 1.5 to
2 s of collection in a 12 s write phase; frozen and collected every 20,000 allocations, 30 ms.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 20_000  # allocations between young passes in a hot phase (CPython's default: 700)


@contextmanager
def hot_phase() -> Iterator[None]:
    """Run the block with what exists now frozen and young passes every YOUNG_THRESHOLD allocations.

    Frozen objects (everything alive when the block starts) are never walked again until the
    block ends; cycles made inside the block are still collected, less often.
    """
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(YOUNG_THRESHOLD, previous[0]), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def tune_for_service() -> None:
    """For a process that serves until stopped (the proxy): start-up frozen, young passes rarer."""
    gc.freeze()
    threshold = gc.get_threshold()
    gc.set_threshold(max(YOUNG_THRESHOLD, threshold[0]), *threshold[1:])
