"""Injector schedules and rollback: windows open and close on time, rollback runs newest first."""

from __future__ import annotations

import random
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from astrachaos.errors import RollbackFailed
from astrachaos.injectors import active
from astrachaos.injectors.interface import ClientHooks, InjectorStats
from astrachaos.injectors.schedule import ScheduledFault, active_at
from astrachaos.scenario import InjectorSpec, Schedule


def test_window_opens_at_start_and_closes_after_duration() -> None:
    schedule = Schedule(start_s=2, duration_s=3)
    assert [active_at(schedule, t) for t in (0, 1.9, 2.0, 4.9, 5.0, 9)] == [
        False,
        False,
        True,
        True,
        False,
        False,
    ]


def test_repeating_window() -> None:
    schedule = Schedule(start_s=1, duration_s=1, repeat_s=4)
    assert [active_at(schedule, t) for t in (1.5, 2.5, 5.5, 6.5, 9.2)] == [True, False, True, False, True]


def test_open_ended_window_lasts_to_the_end() -> None:
    assert active_at(Schedule(start_s=1), 10_000)


def test_toggling_flips_within_the_window_and_records_each_window() -> None:
    events: list[str] = []
    fault = ScheduledFault(
        "f",
        lambda: events.append("on"),
        lambda: events.append("off"),
        Schedule(toggle_ms=(50, 100)),
        random.Random(1),
        lambda w: None,
    )
    t = 0.0
    while t < 2.0:
        fault.tick(t)
        t += 0.01
    fault.end()
    assert events[0] == "on" and events[-1] == "off"
    assert 10 <= events.count("on") <= 30
    assert all(w.end_ns is not None and w.end_ns >= w.start_ns for w in fault.windows)


class _Params(BaseModel):
    fail_rollback: bool = False


def _fake(log: list[str]) -> Any:
    class Fake:
        name: ClassVar[str] = "fake"
        kind: ClassVar[str] = "client"
        Params: ClassVar[type[BaseModel]] = _Params
        count = 0

        def __init__(self, params: _Params, context: Any) -> None:
            Fake.count += 1
            self.n = Fake.count
            self.params = params

        def prepare(self) -> None:
            return None

        def apply(self) -> None:
            log.append(f"apply {self.n}")

        def rollback(self) -> None:
            log.append(f"rollback {self.n}")
            if self.params.fail_rollback:
                raise OSError("node did not come back")

        def close(self) -> None:
            log.append(f"close {self.n}")

        def stats(self) -> InjectorStats:
            return InjectorStats(self.name, self.kind, 0, 0)

    return Fake


def _applied(
    monkeypatch: pytest.MonkeyPatch, params: list[dict[str, Any]], log: list[str], events: Any = None
) -> Any:
    fake = _fake(log)
    monkeypatch.setattr(active, "lookup", lambda name: fake)
    injectors = active.ActiveInjectors(
        [InjectorSpec(name="fake", params=p) for p in params],
        profile=None,
        local_cluster=None,
        random_seed=1,
        events=events,
    )
    for fault in injectors._faults:
        fault.tick(0.0)
    return injectors


def test_rollback_runs_in_reverse_order_then_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    injectors = _applied(monkeypatch, [{}, {}, {}], log)
    injectors.finish()
    injectors.close()
    assert log == [
        "apply 1",
        "apply 2",
        "apply 3",
        "rollback 3",
        "rollback 2",
        "rollback 1",
        "close 3",
        "close 2",
        "close 1",
    ]


def test_a_failed_rollback_still_rolls_back_the_rest_and_exits_6(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    injectors = _applied(monkeypatch, [{}, {"fail_rollback": True}, {}], log)
    with pytest.raises(RollbackFailed) as raised:
        injectors.finish()
    assert "rollback 1" in log and "rollback 3" in log
    assert "node did not come back" in raised.value.message
    assert int(raised.value.exit_code) == 6


def test_client_hooks_are_removed_by_equality_of_bound_methods() -> None:
    hooks = ClientHooks()

    class Holder:
        def decide(self, writer: int, records: int) -> None:
            return None

    holder = Holder()
    hooks.add(holder.decide)
    hooks.remove(holder.decide)
    assert hooks._hooks == []


def test_a_run_observes_its_active_faults_through_events(monkeypatch: pytest.MonkeyPatch) -> None:
    from astrachaos.events import EventBus, PhaseStarted
    from astrachaos.run.progress import RunProgress

    bus, progress = EventBus(), RunProgress(10)
    progress.subscribe(bus)
    bus.publish(PhaseStarted("writing"))
    injectors = _applied(monkeypatch, [{}, {}], [], events=bus)
    assert progress.snapshot().phase == "writing"
    assert progress.snapshot().active_faults == (injectors._faults[0].name, injectors._faults[1].name)
    injectors.finish()
    assert progress.snapshot().active_faults == ()
