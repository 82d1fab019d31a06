"""Application patterns by name: the entry-point group `astrachaos.patterns`, or `module:attribute`.

The four built-ins are registered in the group exactly as a third party's pattern would be. A
pattern is a factory called once per writer with a `PatternContext`, returning an `AppPattern`;
it is resolved and checked when the scenario is loaded, not when the first batch is written.
"""

from __future__ import annotations

from typing import Any

from astrachaos import plugins
from astrachaos.patterns.interface import AppPattern, PatternContext

GROUP = "astrachaos.patterns"
METHODS = ("write", "shutdown")
PatternNotFound = plugins.PluginNotFound


def available() -> dict[str, Any]:
    """Every registered pattern factory by name (built-ins and plugins)."""
    return plugins.registered(GROUP)


def resolve(name: str) -> Any:
    """The factory for `name` (a registered name or `package.module:attribute`), checked."""
    return plugins.load(GROUP, name, "pattern", METHODS)


def build(ctx: PatternContext) -> AppPattern:
    """One writer's application for `ctx.spec.name`."""
    name = str(ctx.spec.name)
    pattern = resolve(name)(ctx)
    missing = [m for m in METHODS if not callable(getattr(pattern, m, None))]
    if missing:
        raise PatternNotFound(f"pattern {name!r} returned {pattern!r}, which lacks {', '.join(missing)}")
    return pattern  # type: ignore[no-any-return]
