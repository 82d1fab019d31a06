"""How the interpreter runs a hot phase (a write phase, a verification): the GIL and the collector.

Both phases are many small Python steps on several threads that share one GIL, against a driver
whose I/O thread needs the GIL to read every reply.

The GIL's switch interval is how long a thread may keep the GIL while another waits for it. The
write phase wants it long (a writer finishes its burst before the I/O thread takes over); a
verification wants it short (the I/O thread reads the next page while the main thread digests
the last). Each phase sets its own and restores the previous one.

The cyclic collector: both phases allocate a few dozen objects per record and free them by
reference counting (the driver's futures and ours hold no cycles once answered: see
`driver.throttled`). The collector does not know that. At its default threshold it runs a young
pass every 700 allocations, promotes what is in flight at that moment, and soon walks the whole
heap (the driver's schema metadata, the record plan, every module) in a full pass, with the GIL
held: every thread of the process stops. In the bench's 60,000-record run (a write phase of about
12 s) that was 1.5 to 2 s of collection; frozen and collected every 20,000 allocations, 24-36 ms.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 20_000  # allocations between young passes in a hot phase (CPython's default: 700)


@contextmanager
def gil_switch_interval(seconds: float) -> Iterator[None]:
    """Run the block with `sys.setswitchinterval(seconds)`; the previous value after it."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


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
