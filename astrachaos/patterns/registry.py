"""Application patterns by name: the entry-point group `astrachaos.patterns`, or `module:attribute`.

The four built-ins are registered in the group exactly as a third party's pattern would be. A
pattern is a factory called once per writer with a `PatternContext`, returning an `AppPattern`;
it is resolved and checked when the scenario is loaded, not when the first batch is written.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import os
import sys
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from astrachaos.patterns.interface import AppPattern, PatternContext

GROUP = "astrachaos.patterns"
log = logging.getLogger(__name__)


class PatternNotFound(ValueError):
    """The scenario names a pattern that is neither registered nor importable as module:attribute."""


@cache
def available() -> dict[str, Any]:
    """Every registered pattern factory by name; a plugin that fails to load is logged and skipped."""
    found: dict[str, Any] = {}
    for entry in entry_points(group=GROUP):
        try:
            factory = entry.load()
        except Exception:  # a broken third-party plugin must not break every run
            log.exception("pattern plugin %s failed to load", entry.value)
            continue
        found[entry.name] = factory
    return found


def resolve(name: str) -> Any:
    """The factory for `name` (a registered name or `package.module:attribute`), checked."""
    if ":" in name:
        module_name, _, attribute = name.partition(":")
        if "" not in sys.path and os.getcwd() not in sys.path:  # as `python -m` would: the cwd first
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            raise PatternNotFound(f"pattern {name!r}: cannot import {module_name!r}: {error}") from None
        factory: Any = module
        for part in attribute.split("."):
            factory = getattr(factory, part, None)
            if factory is None:
                raise PatternNotFound(f"pattern {name!r}: {module_name} has no {attribute!r}")
    else:
        factories = available()
        if name not in factories:
            known = ", ".join(sorted(factories)) or "(none installed)"
            close = difflib.get_close_matches(name, list(factories), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PatternNotFound(
                f"unknown pattern {name!r}{hint}; registered: {known}; "
                "or your own as 'package.module:factory'"
            )
        factory = factories[name]
    _check(name, factory)
    return factory


def _check(name: str, factory: Any) -> None:
    """A factory takes one argument (the context); a class must also have write and shutdown."""
    if not callable(factory):
        raise PatternNotFound(f"pattern {name!r} is not callable: {factory!r}")
    if inspect.isclass(factory):
        missing = [m for m in ("write", "shutdown") if not callable(getattr(factory, m, None))]
        if missing:
            raise PatternNotFound(f"pattern {name!r}: class {factory.__name__} lacks {', '.join(missing)}")
    try:
        inspect.signature(factory).bind(None)
    except TypeError:
        raise PatternNotFound(
            f"pattern {name!r} must be callable with one argument (the PatternContext)"
        ) from None
    except ValueError:  # no signature to inspect (a builtin): let the call decide
        pass


def build(ctx: PatternContext) -> AppPattern:
    """One writer's application for `ctx.spec.name`."""
    name = str(ctx.spec.name)
    pattern = resolve(name)(ctx)
    missing = [m for m in ("write", "shutdown") if not callable(getattr(pattern, m, None))]
    if missing:
        raise PatternNotFound(f"pattern {name!r} returned {pattern!r}, which lacks {', '.join(missing)}")
    return pattern  # type: ignore[no-any-return]
