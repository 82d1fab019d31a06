"""Token-range split: contiguous, covering [-2**63, 2**63-1], no overlap."""

from __future__ import annotations

import itertools

import pytest

from astrachaos.reconcile.tokens import MAX_TOKEN, MIN_TOKEN, split_ring


@pytest.mark.parametrize("splits", [1, 2, 3, 7, 64, 1000])
def test_ranges_are_contiguous_and_cover_the_ring(splits: int) -> None:
    ranges = split_ring(splits)
    assert len(ranges) == splits
    assert ranges[0].start == MIN_TOKEN and ranges[0].includes_start
    assert ranges[-1].end == MAX_TOKEN
    for left, right in itertools.pairwise(ranges):
        assert right.start == left.end and not right.includes_start and left.end > left.start


@pytest.mark.parametrize("token", [MIN_TOKEN, MIN_TOKEN + 1, -1, 0, 1, MAX_TOKEN - 1, MAX_TOKEN])
def test_every_token_is_in_exactly_one_range(token: int) -> None:
    assert sum(r.contains(token) for r in split_ring(7)) == 1


def test_boundaries_belong_to_the_range_they_end() -> None:
    ranges = split_ring(4)
    assert ranges[0].contains(ranges[0].end) and not ranges[1].contains(ranges[0].end)


def test_zero_splits_is_refused() -> None:
    with pytest.raises(ValueError):
        split_ring(0)
