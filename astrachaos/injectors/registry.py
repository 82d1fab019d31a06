"""Injector discovery through the `astrachaos.injectors` entry-point group (built-ins included)."""

from __future__ import annotations

import logging
from functools import cache
from importlib.metadata import entry_points

from astrachaos.errors import InvalidScenario
from astrachaos.injectors.interface import InjectorFactory

GROUP = "astrachaos.injectors"
log = logging.getLogger(__name__)


@cache
def available() -> dict[str, InjectorFactory]:
    """Every registered injector by name; a plugin that fails to load is logged and skipped."""
    found: dict[str, InjectorFactory] = {}
    for entry in entry_points(group=GROUP):
        try:
            factory = entry.load()
        except Exception:  # a broken third-party plugin must not break every run
            log.exception("injector plugin %s failed to load", entry.value)
            continue
        _check(entry.name, factory)
        found[entry.name] = factory
    return found


def _check(name: str, factory: object) -> None:
    for attribute in ("name", "kind", "Params"):
        if not hasattr(factory, attribute):
            raise InvalidScenario(f"injector plugin {name!r} has no {attribute!r} attribute")


def lookup(name: str) -> InjectorFactory:
    """The factory registered as `name`, or an InvalidScenario listing the known names."""
    factories = available()
    if name not in factories:
        known = ", ".join(sorted(factories)) or "(none installed)"
        raise InvalidScenario(f"unknown injector {name!r}; known injectors: {known}")
    return factories[name]
