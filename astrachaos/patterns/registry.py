"""Build the application pattern a scenario names (a closed set: an exhaustive match)."""

from __future__ import annotations

from typing import assert_never

from astrachaos.patterns.careful import Careful
from astrachaos.patterns.empty_retry import EmptyRetry
from astrachaos.patterns.fire_and_forget import FireAndForget
from astrachaos.patterns.interface import AppPattern, PatternContext
from astrachaos.patterns.uploader import Uploader
from astrachaos.scenario import PatternName


def build(ctx: PatternContext) -> AppPattern:
    """One writer's application for `ctx.spec.name`."""
    name = ctx.spec.name
    match name:
        case PatternName.CAREFUL:
            return Careful(ctx)
        case PatternName.FIRE_AND_FORGET:
            return FireAndForget(ctx)
        case PatternName.UPLOADER:
            return Uploader(ctx)
        case PatternName.EMPTY_RETRY:
            return EmptyRetry(ctx)
        case _:
            assert_never(name)
