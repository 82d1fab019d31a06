"""Writer processes: how the writers are spread, and how their counts come together."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from astrachaos.run.processes import merge_injector_stats
from astrachaos.run.writer_process import WriterJob, merge_throttler_stats, writer_ids
from astrachaos.scenario import Workload


def test_each_writer_runs_in_exactly_one_process() -> None:
    jobs = [WriterJob(p, 3, {}, None, None, "r", 1, 0, "d", {}) for p in range(3)]  # type: ignore[arg-type]
    spread = [writer_ids(job, 8) for job in jobs]
    assert spread == [[0, 3, 6], [1, 4, 7], [2, 5]]


def test_more_processes_than_writers_is_an_invalid_workload() -> None:
    with pytest.raises(ValidationError, match="processes"):
        Workload(writers=2, processes=3)


def test_throttler_counters_add_up_and_high_water_marks_take_the_highest() -> None:
    merged = merge_throttler_stats(
        [{"admitted": 10, "max_in_flight_seen": 7}, {"admitted": 5, "max_in_flight_seen": 9}]
    )
    assert merged == {"admitted": 15, "max_in_flight_seen": 9}


def test_one_injector_seen_in_two_processes_is_reported_once() -> None:
    part = {"name": "client", "kind": "client", "requests": 10, "injected": 2, "by_type": {"Unavailable": 2}}
    other = {**part, "requests": 5, "injected": 1, "by_type": {"Unavailable": 1}}
    assert merge_injector_stats([[part], [other]]) == [
        {"name": "client", "kind": "client", "requests": 15, "injected": 3, "by_type": {"Unavailable": 3}}
    ]
