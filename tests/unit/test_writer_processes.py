"""Writer processes: how the writers are spread, and how their counts come together."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from astrachaos.run.processes import _write_phase_end, merge_injector_stats
from astrachaos.run.writer_process import ProcessReport, WriterJob, merge_throttler_stats, writer_ids
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


def test_the_write_phase_ends_when_the_last_process_had_its_writes_answered() -> None:
    reports = [ProcessReport(0, finished_ns=5_000), ProcessReport(1, finished_ns=7_000)]
    assert _write_phase_end(reports) == 7_000  # not when the processes exited, later


def test_a_process_that_never_finished_its_writes_ends_the_phase_now() -> None:
    before = time.monotonic_ns()
    reports = [ProcessReport(0, finished_ns=5_000), ProcessReport(1, error="exited -9")]
    assert _write_phase_end(reports) >= before
