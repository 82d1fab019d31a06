"""`--set PATH=VALUE` overrides: parsed from the command line, applied to raw scenario data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from astrachaos.errors import InvalidScenario, UsageProblem

FieldPath = tuple[str | int, ...]
"""A position in scenario data, as pydantic reports it: `("injectors", 0, "params", "rate")`."""

_HINT = "write --set SECTION.FIELD=VALUE, e.g. --set workload.records=5000"


@dataclass(frozen=True)
class Override:
    """One `--set` argument: the dotted path it names and the YAML value it gives."""

    argument: str
    path: tuple[str, ...]
    value: object

    @property
    def source(self) -> str:
        """How error messages name this override."""
        return _source(self.argument)


def _source(argument: str) -> str:
    shown = argument if argument.isprintable() else repr(argument)[1:-1]  # one problem, one line
    return f"command line, --set {shown}"


def parse_override(argument: str) -> Override:
    """Split `PATH=VALUE` and read VALUE as YAML (`12`, `0.5`, `true`, `null`, `[1, 2]`)."""
    where = _source(argument)
    dotted, equals, text = argument.partition("=")
    path = tuple(part.strip() for part in dotted.split("."))
    if not equals or not all(path):
        # The shape of the argument is a command-line mistake (exit 2), not a scenario's (3).
        raise UsageProblem(f"{where}: expected PATH=VALUE", hint=_HINT)
    try:
        if any(isinstance(token, yaml.AnchorToken | yaml.AliasToken) for token in yaml.scan(text)):
            raise InvalidScenario(f"{where}: anchors and aliases are not allowed in a value")
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or "not a YAML value"
        raise InvalidScenario(f"{where}: {problem}", hint="quote the value") from None
    except RecursionError:
        raise InvalidScenario(f"{where}: the value is nested too deeply") from None
    return Override(argument, path, value)


def apply_override(data: dict[str, Any], override: Override) -> FieldPath:
    """Set the value in `data`, creating missing sections; returns the path as pydantic spells it.

    A list index may be one past the end, which appends (`injectors.0.name=...` adds an injector
    to a scenario that has none).
    """
    container: dict[str, Any] | list[Any] = data
    resolved: list[str | int] = []
    *parents, last = override.path
    for position, part in enumerate(parents):
        key = _key(container, part, override, resolved)
        child = _get(container, key)
        if child is None:
            child = [] if _is_index(override.path[position + 1]) else {}
            _put(container, key, child)
        if not isinstance(child, dict | list):
            raise InvalidScenario(
                f"{override.source}: {'.'.join(override.path[: position + 1])} is {child!r}, "
                "not a section or a list",
                hint=_HINT,
            )
        resolved.append(key)
        container = child
    key = _key(container, last, override, resolved)
    _put(container, key, override.value)
    return (*resolved, key)


def _key(
    container: dict[str, Any] | list[Any], part: str, override: Override, resolved: list[str | int]
) -> str | int:
    if isinstance(container, dict):
        return part
    if not _is_index(part) or int(part) > len(container):
        where = ".".join(str(step) for step in resolved)
        raise InvalidScenario(
            f"{override.source}: {where} has {len(container)} item(s); "
            f"{part!r} is not an index from 0 to {len(container)}",
            hint=_HINT,
        )
    return int(part)


def _is_index(part: str) -> bool:
    return part.isascii() and part.isdigit()


def _get(container: dict[str, Any] | list[Any], key: str | int) -> object:
    if isinstance(container, dict):
        return container.get(str(key))
    return container[int(key)] if int(key) < len(container) else None


def _put(container: dict[str, Any] | list[Any], key: str | int, value: object) -> None:
    if isinstance(container, dict):
        container[str(key)] = value
    elif int(key) == len(container):
        container.append(value)
    else:
        container[int(key)] = value
