"""The interpreter settings of a hot phase: set for the block, as they were after it."""

from __future__ import annotations

import gc

from astrachaos.interpreter import YOUNG_THRESHOLD, gil_switch_interval, hot_phase


def test_a_hot_phase_freezes_the_heap_and_collects_young_less_often_then_restores_both() -> None:
    before = gc.get_threshold()
    with hot_phase():
        assert gc.get_threshold()[0] == max(YOUNG_THRESHOLD, before[0])
        assert gc.get_threshold()[1:] == before[1:]
        assert gc.get_freeze_count() > 0  # what existed when the phase began
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_hot_phase_that_raises_still_restores_the_collector() -> None:
    before = gc.get_threshold()
    try:
        with hot_phase():
            raise KeyError("in the phase")
    except KeyError:
        pass
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_switch_interval_holds_for_the_block_only() -> None:
    import sys

    before = sys.getswitchinterval()
    with gil_switch_interval(0.001):
        assert sys.getswitchinterval() == 0.001
    assert sys.getswitchinterval() == before
