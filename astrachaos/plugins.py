"""Plugins by name: an entry-point group's registered objects, or a `package.module:attribute`.

Standard library only, so the scenario model can check a name when a file is loaded without
importing what the plugin family is built on.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Sequence
from functools import cache
from importlib.metadata import entry_points
from typing import Any

log = logging.getLogger(__name__)


class PluginNotFound(ValueError):
    """A name that is neither registered in its group nor importable as module:attribute."""


@cache
def registered(group: str) -> dict[str, Any]:
    """Every object registered in `group` by name; one that fails to load is logged and skipped."""
    found: dict[str, Any] = {}
    for entry in entry_points(group=group):
        try:
            found[entry.name] = entry.load()
        except Exception:  # a broken third-party plugin must not break every run
            log.exception("plugin %s of %s failed to load", entry.value, group)
    return found


def load(group: str, name: str, kind: str, methods: Sequence[str] = ()) -> Any:
    """The factory `name` of `group` (or `module:attribute`), callable with one argument.

    A class must also have `methods`. Raises PluginNotFound saying what is wrong.
    """
    factory = _by_reference(name, kind) if ":" in name else _by_name(group, name, kind)
    if not callable(factory):
        raise PluginNotFound(f"{kind} {name!r} is not callable: {factory!r}")
    if inspect.isclass(factory):
        missing = [m for m in methods if not callable(getattr(factory, m, None))]
        if missing:
            raise PluginNotFound(f"{kind} {name!r}: class {factory.__name__} lacks {', '.join(missing)}")
    try:
        inspect.signature(factory).bind(None)
    except TypeError:
        raise PluginNotFound(f"{kind} {name!r} must be callable with one argument (its context)") from None
    except ValueError:  # no signature to inspect (a builtin): let the call decide
        pass
    return factory


def _by_name(group: str, name: str, kind: str) -> Any:
    factories = registered(group)
    if name not in factories:
        known = ", ".join(sorted(factories)) or "(none installed)"
        close = difflib.get_close_matches(name, list(factories), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PluginNotFound(
            f"unknown {kind} {name!r}{hint}; registered: {known}; or your own as 'package.module:factory'"
        )
    return factories[name]


def _by_reference(name: str, kind: str) -> Any:
    module_name, _, attribute = name.partition(":")
    if "" not in sys.path and os.getcwd() not in sys.path:  # as `python -m` would: the cwd first
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise PluginNotFound(f"{kind} {name!r}: cannot import {module_name!r}: {error}") from None
    found: Any = module
    for part in attribute.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise PluginNotFound(f"{kind} {name!r}: {module_name} has no {attribute!r}")
    return found
