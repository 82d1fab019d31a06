"""What an engine is: it runs `diff_range` for each token range and hands back each outcome."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from astrachaos.reconcile.portable import PortableProfile
from astrachaos.reconcile.rangediff import RangeJob, RangeOutcome
from astrachaos.reconcile.tokens import TokenRange

OutcomeSink = Callable[[RangeOutcome], None]  # called on the calling thread, once per range


@dataclass(frozen=True)
class EngineContext:
    """What the caller holds: open sessions (for threads here) and secrets (for other processes)."""

    sessions: Mapping[PortableProfile, Any] = field(default_factory=dict)
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False)


class Engine(Protocol):
    """Runs every range once; `done` gets each outcome as soon as it is known (for the checkpoint)."""

    def run(
        self, job: RangeJob, ranges: Sequence[TokenRange], done: OutcomeSink, context: EngineContext
    ) -> None:
        """Diff `ranges`; a range that cannot be diffed comes back with findings None."""
        ...
