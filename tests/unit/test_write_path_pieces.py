"""Pieces of the write path made cheaper per statement: they must still count exactly."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from astrachaos.events import DriverOutcome, EventBus, WriteCompleted
from astrachaos.patterns.careful import _Window
from astrachaos.scenario import Scenario
from astrachaos.workload.affinity import on_one_cpu
from astrachaos.workload.plan import RecordPlan
from astrachaos.workload.stats import WriteStats, latency_of, new_histogram, record_latency
from astrachaos.workload.writers import WRITE_SWITCH_INTERVAL_S, Writers


def _acked(latency_us: int) -> WriteCompleted:
    return WriteCompleted((1,), DriverOutcome.ACKED, 1, 1_000, 1_000 + latency_us * 1_000)


def test_latencies_folded_per_distinct_value_give_the_histogram_of_each_one() -> None:
    stats, direct = WriteStats(), new_histogram()
    latencies = [(i * 7919) % 5_000 for i in range(20_000)]  # many repeats, and zero
    for us in latencies:
        stats.on_completed(_acked(us))
        record_latency(direct, 1_000, 1_000 + us * 1_000)
    stats.on_completed(WriteCompleted((2, 3), DriverOutcome.FAILED, 1, 0, 5, "WriteTimeout", "x"))
    assert stats.latency() == latency_of(direct)
    assert stats.histogram.get_total_count() == len(latencies)
    assert stats.outcomes == {DriverOutcome.ACKED: len(latencies), DriverOutcome.FAILED: 2}
    stats.on_completed(_acked(10))  # after a read, the next latencies are still counted
    assert stats.histogram.get_total_count() == len(latencies) + 1


def test_a_writer_blocked_on_a_full_window_waits_for_a_refill_and_never_exceeds_it() -> None:
    window = _Window(4, 2)
    for _ in range(4):
        window.take()
    taken = threading.Event()

    def writer() -> None:
        window.take()
        taken.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    window.give()
    assert not taken.wait(0.2)  # one free slot is less than the refill: still asleep
    window.give()
    assert taken.wait(30)  # two free: it takes one
    thread.join(30)
    window.take()  # the other free slot
    assert not window._free  # four taken again, the bound held throughout


class _SeesTheSwitchInterval:
    """An application pattern that notes the GIL switch interval its writer thread runs under."""

    def __init__(self) -> None:
        self.seen: list[float] = []
        self.cpus: list[set[int]] = []

    def write(self, batch: object, batch_no: int) -> None:
        self.seen.append(sys.getswitchinterval())
        self.cpus.append(os.sched_getaffinity(0))

    def shutdown(self) -> None:
        pass


def test_writers_run_under_the_write_switch_interval_and_restore_the_previous_one() -> None:
    scenario = Scenario.model_validate(
        {"name": "gil", "workload": {"writers": 2, "records": 40, "batch_size": 10}}
    )
    patterns = [_SeesTheSwitchInterval(), _SeesTheSwitchInterval()]
    before = sys.getswitchinterval()
    assert before != WRITE_SWITCH_INTERVAL_S  # else the test would prove nothing
    plan = RecordPlan(scenario.workload, "gil", scenario.schema_.buckets, 1)
    Writers(scenario, plan, patterns, channel=None, bus=EventBus()).run()  # type: ignore[arg-type]
    assert [len(p.seen) for p in patterns] == [2, 2]
    assert {s for p in patterns for s in p.seen} == {WRITE_SWITCH_INTERVAL_S}
    assert sys.getswitchinterval() == before


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin to one")
def test_writers_run_on_one_cpu_unless_told_not_to_and_the_process_gets_its_cpus_back() -> None:
    allowed = os.sched_getaffinity(0)
    for pin, expected in ((True, 1), (False, len(allowed))):
        scenario = Scenario.model_validate(
            {"name": "cpu", "workload": {"writers": 2, "records": 20, "batch_size": 10, "pin_cpu": pin}}
        )
        patterns = [_SeesTheSwitchInterval(), _SeesTheSwitchInterval()]
        plan = RecordPlan(scenario.workload, "cpu", scenario.schema_.buckets, 1)
        Writers(scenario, plan, patterns, channel=None, bus=EventBus()).run()  # type: ignore[arg-type]
        seen = [cpus for p in patterns for cpus in p.cpus]
        assert len(seen) == 2 and all(len(cpus) == expected for cpus in seen)
        assert len({frozenset(cpus) for cpus in seen}) == 1  # the same CPU for every writer
        assert os.sched_getaffinity(0) == allowed


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin to one")
def test_one_cpu_pins_threads_started_before_and_inside_and_each_process_slot_takes_another() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    release = threading.Event()
    seen: dict[str, set[int]] = {}
    ids: dict[str, int] = {}

    def idle(name: str) -> None:
        ids[name] = threading.get_native_id()
        release.wait(10)

    before = threading.Thread(target=idle, args=("before",))
    before.start()
    with on_one_cpu(0) as first:
        inside = threading.Thread(target=idle, args=("inside",))
        inside.start()
        while len(ids) < 2:
            time.sleep(0.01)
        seen = {name: os.sched_getaffinity(tid) for name, tid in ids.items()}
    after = os.sched_getaffinity(ids["before"])
    release.set()
    before.join()
    inside.join()
    assert first == allowed[-1]
    assert seen == {"before": {first}, "inside": {first}}
    assert sorted(after) == allowed
    with on_one_cpu(1) as second:
        assert second == allowed[-2]
