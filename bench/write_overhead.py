"""`python -m bench.write_overhead N`: the engine's own CPU per record, without a database.

The engine's write path (careful, ledger, application log, statistics, progress) runs against a
fake driver whose "I/O thread" answers every request at once: what remains is astrachaos's own
work per record, which the raw driver baseline does not do. CPU time on a shared machine is
noisy; instructions are not. The figures in the write-path commits were measured with:

    for n in 5000 15000; do valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n \\
        .venv/bin/python -m bench.write_overhead $n 2>&1 | grep Collected; done

(instructions of 15,000 records - of 5,000) / 10,000 = instructions per record.
"""

from __future__ import annotations

import queue
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from astrachaos.driver.retry import is_retryable
from astrachaos.driver.table import RunTable
from astrachaos.driver.throttle import PassThroughThrottler
from astrachaos.driver.throttled import ThrottledSession
from astrachaos.events import EventBus
from astrachaos.ledger.writer import Ledger
from astrachaos.patterns.interface import PatternContext, SharedAppState
from astrachaos.patterns.registry import build
from astrachaos.run.progress import RunProgress
from astrachaos.workload.applog import ApplicationLog
from astrachaos.workload.channel import WriteChannel
from astrachaos.workload.plan import RecordPlan
from astrachaos.workload.stats import WriteStats
from astrachaos.workload.writers import Writers
from bench.plan import FULL, bench_scenario


class _Loop:
    """The fake driver's I/O thread: runs each response's callback, in arrival order."""

    def __init__(self) -> None:
        self.pending: queue.SimpleQueue[_Response] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="fake-event-loop", daemon=True).start()

    def _run(self) -> None:
        while True:
            response = self.pending.get()
            response.callback(None, *response.args)


class _Response:
    def __init__(self, loop: _Loop) -> None:
        self._loop = loop
        self.callback: Any = None
        self.args: tuple[Any, ...] = ()

    def add_callbacks(
        self, callback: Any, errback: Any, callback_args: Any = (), errback_args: Any = ()
    ) -> None:
        self.callback, self.args = callback, callback_args
        self._loop.pending.put(self)


class _DriverSession:
    def __init__(self) -> None:
        self._loop = _Loop()

    def execute_async(self, statement: Any, parameters: Any = None, timeout: Any = None) -> _Response:
        return _Response(self._loop)


class _Bound:
    is_idempotent = True


class _Prepared:
    def bind(self, values: Any) -> _Bound:
        return _Bound()


class _Live:
    """What `ResettableSession.current()` gives the channel."""

    def __init__(self) -> None:
        throttler = PassThroughThrottler(1024)
        self.throttled = ThrottledSession(_DriverSession(), throttler, default_timeout_s=15.0)
        self._prepared = _Prepared()

    def prepared(self, cql: str) -> _Prepared:
        return self._prepared


class _Sessions:
    def __init__(self) -> None:
        self._live = _Live()

    def current(self) -> _Live:
        return self._live


def main(records: int) -> None:
    """Write `records` records of the bench scenario through the engine and the fake driver."""
    scenario = bench_scenario(FULL, records, name="write-overhead")
    work = Path(tempfile.mkdtemp(prefix="astrachaos-overhead-"))
    bus = EventBus()
    ledger = Ledger.create(work / "ledger.sqlite", "overhead", {})
    ledger.subscribe(bus)
    stats = WriteStats()
    stats.subscribe(bus)
    RunProgress(records).subscribe(bus)
    channel = WriteChannel(
        _Sessions(), RunTable("ks", "t"), "overhead", scenario.workload.statement, None,
        scenario.schema_.buckets, bus,
    )  # fmt: skip
    app_log = ApplicationLog(work / "app.log.jsonl", bus, "careful")
    patterns = [
        build(PatternContext(channel=channel, log=app_log, spec=scenario.pattern, shared=SharedAppState(),
                             writer=w, retry_delay_s=lambda attempt: 0.01, is_retryable=is_retryable))
        for w in range(scenario.workload.writers)
    ]  # fmt: skip
    plan = RecordPlan(scenario.workload, "overhead", scenario.schema_.buckets, 1)
    began, cpu = time.perf_counter(), time.process_time()
    Writers(scenario, plan, patterns, channel, bus).run()
    channel.wait_idle(60)
    app_log.close()
    ledger.flush()
    cpu, seconds = time.process_time() - cpu, time.perf_counter() - began
    ledger.close()
    acked = sum(stats.outcomes.values())
    print(f"{records:,} records ({acked:,} answered): {cpu / records * 1e6:.1f} us CPU per record, "
          f"{records / seconds:,.0f} records/s")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)
