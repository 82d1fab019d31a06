"""What every injector provides: a parameter model, apply/rollback, statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel


@dataclass(frozen=True)
class InjectorStats:
    """What an injector saw and did during a run."""

    name: str
    kind: str
    requests: int
    injected: int
    by_type: dict[str, int] = field(default_factory=dict)


class Injector(Protocol):
    """A reversible fault. `apply` and `rollback` may be called several times (schedules)."""

    name: ClassVar[str]
    kind: ClassVar[str]  # client | network | protocol | node
    Params: ClassVar[type[BaseModel]]

    def apply(self) -> None:
        """Start the fault."""

    def rollback(self) -> None:
        """Stop the fault and restore what apply changed."""

    def stats(self) -> InjectorStats:
        """Counters so far."""


class InjectorFactory(Protocol):
    """A registered injector class: validated parameters in, an injector out."""

    name: ClassVar[str]
    kind: ClassVar[str]
    Params: ClassVar[type[BaseModel]]

    def __call__(self, params: Any, context: Any) -> Injector: ...
