"""`--workers N`: ranges diffed by N spawned processes, each with its own driver Cluster and threads.

Processes are spawned, not forked: the caller holds a driver Cluster with live threads, and the
driver's documentation requires a Cluster to be created in the process that uses it. Each worker
opens its Cluster on its first range (`diff_range` does) and runs `threads` ranges at once; the
parent only hands out ranges and collects findings, so the merge work is spread over the cores.
A worker that dies takes its ranges in progress with it: those come back failed (exit 5, and
`--resume` reads just them again).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from astrachaos.reconcile.engines.interface import EngineContext, OutcomeSink
from astrachaos.reconcile.rangediff import RangeJob, RangeOutcome, close_sessions, diff_range
from astrachaos.reconcile.tokens import TokenRange

_POLL_S = 0.5
Bounds = tuple[int, int]


@dataclass(frozen=True)
class LocalProcesses:
    """`workers` processes × `threads` ranges at once."""

    workers: int = 2
    threads: int = 8

    def run(
        self, job: RangeJob, ranges: Sequence[TokenRange], done: OutcomeSink, context: EngineContext
    ) -> None:
        """Diff every range; a worker that dies makes its unfinished ranges fail."""
        if not ranges:
            return
        spawn = multiprocessing.get_context("spawn")
        tasks: Any = spawn.Queue()
        results: Any = spawn.Queue()
        for r in ranges:
            tasks.put((r.start, r.end))
        threads = max(1, min(self.threads, -(-len(ranges) // self.workers)))
        for _ in range(self.workers * threads):
            tasks.put(None)
        workers = [
            spawn.Process(
                target=_work, args=(job, tasks, results, threads, dict(context.secret_env)), daemon=True
            )
            for _ in range(min(self.workers, len(ranges)))
        ]
        for worker in workers:
            worker.start()
        try:
            _collect(ranges, results, workers, done)
        finally:
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
                worker.join(5)
            tasks.cancel_join_thread()
            results.cancel_join_thread()


def _collect(ranges: Sequence[TokenRange], results: Any, workers: list[Any], done: OutcomeSink) -> None:
    pending = {(r.start, r.end) for r in ranges}
    started: dict[int, set[Bounds]] = {}  # worker pid → ranges it took and has not finished
    quiet = 0
    while pending:
        try:
            message = results.get(timeout=_POLL_S)
        except queue.Empty:
            quiet += 1
            if quiet >= 2:  # two silent polls: what a dead worker sent has been read by now
                _fail_dead(workers, started, pending, done)
            continue
        quiet = 0
        kind, pid, payload = message
        if kind == "start":
            started.setdefault(pid, set()).add(payload)
            continue
        outcome: RangeOutcome = payload
        bounds = (outcome.start, outcome.end)
        started.get(pid, set()).discard(bounds)
        if bounds in pending:
            pending.discard(bounds)
            done(outcome)


def _fail_dead(
    workers: list[Any], started: dict[int, set[Bounds]], pending: set[Bounds], done: OutcomeSink
) -> None:
    alive = [w for w in workers if w.is_alive()]
    for worker in workers:
        if worker.is_alive() or worker.pid not in started:
            continue
        for bounds in sorted(started.pop(worker.pid) & pending):
            pending.discard(bounds)
            done(RangeOutcome(*bounds, None, f"worker process {worker.pid} exited ({worker.exitcode})"))
    if not alive:  # nobody left to take the rest
        for bounds in sorted(pending):
            done(RangeOutcome(*bounds, None, "no worker process left"))
        pending.clear()


def _work(job: RangeJob, tasks: Any, results: Any, threads: int, secret_env: Mapping[str, str]) -> None:
    """A worker process: `threads` threads take ranges until each meets an end marker."""
    os.environ.update(secret_env)
    pid = os.getpid()

    def loop() -> None:
        while (bounds := tasks.get()) is not None:
            results.put(("start", pid, bounds))
            results.put(("done", pid, diff_range(job, *bounds)))

    pool = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    close_sessions()
    results.close()
    results.join_thread()
