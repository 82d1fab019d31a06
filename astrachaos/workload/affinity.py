"""Where a write phase runs: every thread of a writer process on one CPU, for the phase only.

A writer process's threads (the writers, the driver's I/O thread, the completion thread, the
ledger) take turns holding one GIL, so together they never use more than about one core. Spread
over several cores by the OS, each hand-over of the GIL wakes a thread on another core and moves
its data there. On the bench's 2-core machine (interleaved, medians of 4 runs of 30,000 records)
one core of their own took the engine from 0.83 to 1.03 of the raw driver's writes/s, its CPU per
record from 250 to 220 µs, and the node's from 116 to 80 µs. The database node, or the other
writer processes, keep the other cores.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def _thread_ids() -> list[int]:
    try:
        return [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:  # not Linux
        return []


@contextlib.contextmanager
def on_one_cpu(slot: int) -> Iterator[int | None]:
    """Pin every thread of this process to one of its CPUs for the block; the CPU, or None.

    Writer process `slot` takes the slot-th CPU counting from the last one (CPU 0 takes most
    interrupts). Threads started inside the block inherit the pin; all are given the process's
    former CPUs back after it. Nothing is pinned with a single CPU or without sched_setaffinity.
    """
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        yield None
        return
    cpu = allowed[-1 - slot % len(allowed)]
    _set_all({cpu})
    try:
        yield cpu
    finally:
        _set_all(set(allowed))


def _set_all(cpus: set[int]) -> None:
    for tid in _thread_ids():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(tid, cpus)
