"""The node injector reads what it must restore from nodetool's real output."""

from __future__ import annotations

import pytest

from astrachaos.errors import EnvironmentProblem
from astrachaos.injectors.node import _max_pool_size

OUTPUT = (
    "Stage                        CorePoolSize MaximumPoolSize\n"
    "MutationStage                           0               4\n"
)


def test_reads_the_maximum_pool_size() -> None:
    assert _max_pool_size(OUTPUT) == "4"


def test_unreadable_output_is_an_environment_problem() -> None:
    with pytest.raises(EnvironmentProblem):
        _max_pool_size("error: unknown stage")
