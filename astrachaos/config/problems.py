"""The one formatter of validation problems in YAML files: scenarios, suites, profiles.

Each problem is one line: where the value was written, the field's dotted path, what is wrong,
the offending value (never a secret's) and, for a misspelling, the closest valid name.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Container, Sequence
from enum import Enum
from typing import TypeVar, get_args

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from astrachaos.config.overrides import FieldPath

_T = TypeVar("_T")


def dotted(loc: Sequence[object]) -> str:
    """A field path as people write it: `target.driver.max_queue_size`, one printable line."""
    text = ".".join(str(part) for part in loc)
    return text if text.isprintable() else repr(text)[1:-1]  # one problem, one line


def describe_problems(
    error: ValidationError,
    model: type[BaseModel],
    prefix: FieldPath,
    where: Callable[[FieldPath], str],
    secrets: Container[str] = (),
) -> str:
    """One line per pydantic problem: where it was written, field, message, offending value.

    `where(loc)` names the origin of the value at `loc` (a file and line, an environment
    variable, an argument); the value of a field named in `secrets` is never shown.
    """
    lines = []
    for problem in error.errors():
        loc: FieldPath = (*prefix, *problem["loc"])
        field = f", field {dotted(loc)}" if loc else ""
        hide = bool(loc) and str(loc[-1]) in secrets
        lines.append(f"{where(loc)}{field}: {_message(problem, model, tuple(problem['loc']), hide)}")
    return "\n".join(lines)


def _message(problem: ErrorDetails, model: type[BaseModel], loc: FieldPath, hide: bool) -> str:
    kind = problem["type"]
    if kind == "extra_forbidden":
        return _unknown_field(str(loc[-1]), _model_at(model, loc[:-1]))
    if kind == "missing":
        return str(problem["msg"])
    text = str(problem["msg"]).removeprefix("Value error, ")
    message = text if hide else f"{text} (got {_short(problem['input'])})"
    if kind == "enum" and isinstance(problem["input"], str):
        choices = _enum_values(model, loc)
        close = difflib.get_close_matches(str(problem["input"]), choices, n=1)
        message += f"; did you mean {close[0]!r}?" if close else ""
    return message


def _unknown_field(name: str, model: type[BaseModel] | None) -> str:
    if model is None:
        return f"unknown field {name!r}"
    known = [info.alias or field for field, info in model.model_fields.items()]
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"unknown field {name!r}; did you mean {close[0]!r}?"
    return f"unknown field {name!r}; known fields: {', '.join(known)}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _field(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _model_at(model: type[BaseModel], loc: FieldPath) -> type[BaseModel] | None:
    """The model that validates the mapping found at `loc` (list indices skipped)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        info = _field(current, part)
        current = _nested(info.annotation, BaseModel) if info else None
    return current


def _enum_values(model: type[BaseModel], loc: FieldPath) -> list[str]:
    parent = _model_at(model, loc[:-1])
    info = _field(parent, str(loc[-1])) if parent else None
    enum = _nested(info.annotation, Enum) if info else None
    return [str(member.value) for member in enum] if enum else []


def _nested(annotation: object, base: type[_T]) -> type[_T] | None:
    """The first class deriving from `base` inside a type annotation (`X | None`, `tuple[X]`)."""
    if inspect.isclass(annotation) and issubclass(annotation, base):
        return annotation
    for argument in get_args(annotation):
        found = _nested(argument, base)
        if found is not None:
            return found
    return None
