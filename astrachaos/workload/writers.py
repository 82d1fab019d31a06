"""Writer threads: hand each writer's batches to its application, paced, until done or stopped."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

from astrachaos.events import EventBus, PartitionsPrinted, RecordsPlanned
from astrachaos.interpreter import gil_switch_interval, hot_phase
from astrachaos.scenario import Scenario, StatementKind
from astrachaos.workload.affinity import on_one_cpu
from astrachaos.workload.application import AppPattern
from astrachaos.workload.channel import Channel, Corruption
from astrachaos.workload.plan import PlannedRecord, RecordPlan
from astrachaos.workload.prints import PrintKeeper

log = logging.getLogger(__name__)

# How long a thread may hold the GIL while another waits for it, during a write phase. The
# writer threads, the driver's I/O thread and the completion thread all take turns: with
# CPython's 5 ms default a writer is cut off mid-burst to let the I/O thread read one reply,
# and each hand-over costs more than the work it lets through. A writer whose window is full
# blocks (and releases the GIL) long before 20 ms, so the I/O thread never waits that long.
WRITE_SWITCH_INTERVAL_S = 0.02


@dataclass
class WritersOutcome:
    """What the writers did: records handed over, errors in writer threads."""

    handed_over: int = 0
    writer_errors: list[str] | None = None


class Writers:
    """Runs one thread per writer; `stop` ends them early (Ctrl-C)."""

    def __init__(
        self,
        scenario: Scenario,
        plan: RecordPlan,
        patterns: list[AppPattern] | dict[int, AppPattern],
        channel: Channel,
        bus: EventBus,
        on_handed_over: Callable[[int], None] = lambda total: None,
        stop: threading.Event | None = None,
        writer_ids: Sequence[int] | None = None,
        process: int = 0,
    ) -> None:
        self._scenario = scenario
        self._plan = plan
        self._patterns = patterns
        self._channel = channel
        self._bus = bus
        self._on_handed_over = on_handed_over
        self.stop = stop or threading.Event()
        # In a writer process, only its own writers (the patterns are indexed by writer id).
        self._ids = list(range(len(patterns))) if writer_ids is None else list(writer_ids)
        self._handed = 0
        self._lock = threading.Lock()
        self._errors: list[str] = []
        self._threads: list[threading.Thread] = []
        self._process = process  # which writer process this is: its CPU, with workload.pin_cpu

    def run(self) -> WritersOutcome:
        """Run every writer to the end and shut each application down."""
        self._threads = [
            threading.Thread(target=self._writer, args=(w,), name=f"writer-{w}", daemon=True)
            for w in self._ids
        ]
        pinned = on_one_cpu(self._process) if self._scenario.workload.pin_cpu else nullcontext()
        with pinned, gil_switch_interval(WRITE_SWITCH_INTERVAL_S), hot_phase():
            for thread in self._threads:
                thread.start()
            return self.run_until_stopped()

    def run_until_stopped(self) -> WritersOutcome:
        """Wait for the writer threads (after `stop` is set, they end at the next batch)."""
        for thread in self._threads:
            while thread.is_alive():
                thread.join(0.2)
        return WritersOutcome(self._handed, self._errors or None)

    def _writer(self, writer: int) -> None:
        pattern = self._patterns[writer]
        rng = self._plan.rng(writer)
        interval = self._batch_interval()
        prints = PrintKeeper(wire=self._scenario.workload.statement is not StatementKind.APPEND)
        try:
            if self._scenario.workload.stagger_ms:
                self.stop.wait(writer * self._scenario.workload.stagger_ms / 1000)
            for batch_no, batch in enumerate(self._plan.batches(writer)):
                if self.stop.is_set():
                    break
                if batch_no == 0:
                    next_due = time.monotonic()
                self._corrupt(batch, rng)
                now = time.monotonic_ns()
                self._bus.publish(RecordsPlanned(tuple(p.record for p in batch), now))
                prints.add(batch)
                pattern.write(batch, batch_no)
                self._count(len(batch))
                next_due += interval
                pause = next_due - time.monotonic()
                if pause > 0:
                    self.stop.wait(pause)
        except Exception as error:  # a writer bug must show in the result, not kill the run
            log.exception("writer %s failed", writer)
            with self._lock:
                self._errors.append(f"writer {writer}: {type(error).__name__}: {error}")
        finally:
            pattern.shutdown()
            self._bus.publish(PartitionsPrinted(writer, prints.prints()))

    def _batch_interval(self) -> float:
        workload = self._scenario.workload
        interval = workload.delay_ms / 1000
        if workload.rate:
            interval = max(interval, workload.batch_size * workload.writers / workload.rate)
        return interval

    def _corrupt(self, batch: list[PlannedRecord], rng: random.Random) -> None:
        fraction = self._scenario.pattern.corrupt_fraction
        if not fraction:
            return
        for planned in batch:
            if rng.random() < fraction:
                wrong_partition = rng.random() < 0.5
                self._channel.corruptions[planned.record.record_id] = Corruption(
                    wrong_partition=wrong_partition, null_payload=not wrong_partition
                )

    def _count(self, records: int) -> None:
        with self._lock:
            self._handed += records
            total = self._handed
        self._on_handed_over(total)
