"""What every injector provides, and what it is given: parameters, context, lifecycle, statistics.

Lifecycle of one injector in a run: built from validated parameters and a context; `prepare`
before the driver connects (a proxy starts here and says how the driver must connect);
`apply`/`rollback` as its schedule says (possibly many times); `close` after the run.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
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


@dataclass(frozen=True)
class ConnectOverrides:
    """How the driver must connect so that an injector sits on the path (e.g. via a proxy)."""

    contact_points: list[str]
    port: int
    address_translator: Any = None


@dataclass
class InjectorContext:
    """What injectors may touch: the target, the local cluster, the client hooks, randomness."""

    profile: Any  # astrachaos.config.settings.Profile
    local_cluster: Any | None  # astrachaos.local.LocalCluster when the target is local
    client_hooks: ClientHooks
    rng: random.Random
    probability: float = 1.0
    reset_session: Callable[[], None] | None = None  # set once the session exists
    proxies: Any | None = None  # a running ProxySet to act on (the standalone proxy) instead of a new one
    label: str | None = None  # the fault's own name where several of one kind run (standalone proxy)


class Injector(Protocol):
    """A reversible fault."""

    name: ClassVar[str]
    kind: ClassVar[str]  # client | network | protocol | node
    Params: ClassVar[type[BaseModel]]

    def prepare(self) -> ConnectOverrides | None:
        """Set up before the driver connects; return how it must connect, if that changes."""

    def apply(self) -> None:
        """Start the fault."""

    def rollback(self) -> None:
        """Stop the fault and restore what apply changed."""

    def close(self) -> None:
        """Release what prepare set up (after the final rollback)."""

    def stats(self) -> InjectorStats:
        """Counters so far."""


class InjectorFactory(Protocol):
    """A registered injector class: validated parameters and a context in, an injector out."""

    name: ClassVar[str]
    kind: ClassVar[str]
    Params: ClassVar[type[BaseModel]]

    def __call__(self, params: Any, context: InjectorContext) -> Injector: ...


class Counters:
    """Thread-safe request/injection counters an injector keeps for its statistics."""

    def __init__(self) -> None:
        self.requests = 0
        self.injected = 0
        self.by_type: Counter[str] = Counter()
        self._lock = threading.Lock()

    def seen(self, injected_as: str | None) -> None:
        """Count one request, injected as `injected_as` (None: passed through)."""
        with self._lock:
            self.requests += 1
            if injected_as is not None:
                self.injected += 1
                self.by_type[injected_as] += 1

    def stats(self, name: str, kind: str) -> InjectorStats:
        """A snapshot."""
        with self._lock:
            return InjectorStats(name, kind, self.requests, self.injected, dict(self.by_type))


@dataclass(frozen=True)
class ClientAction:
    """What a client hook does to one statement on its way out."""

    fail_with: BaseException | None = None  # raise this instead of sending
    delay_before_s: float = 0.0  # wait before sending
    delay_after_s: float = 0.0  # hold the answer back (the client timeout may fire)
    drop: bool = False  # report success without sending
    error_after_ack: BaseException | None = None  # send; on acknowledgement report this error
    timestamp_skew_us: int = 0  # shift the write timestamp (client clock skew)


ClientHook = Callable[[int, int], ClientAction | None]  # (writer, records) -> action


class ClientHooks:
    """The client-side injection point the write channel consults for every statement."""

    def __init__(self) -> None:
        self._hooks: list[ClientHook] = []
        self._lock = threading.Lock()

    def add(self, hook: ClientHook) -> None:
        """Consult `hook` for every statement from now on."""
        with self._lock:
            self._hooks = [*self._hooks, hook]

    def remove(self, hook: ClientHook) -> None:
        """Stop consulting `hook`."""
        with self._lock:
            self._hooks = [h for h in self._hooks if h != hook]  # bound methods: equal, not identical

    def decide(self, writer: int, records: int) -> ClientAction | None:
        """The first action any active hook wants for writer `writer`'s statement."""
        for hook in self._hooks:
            action = hook(writer, records)
            if action is not None:
                return action
        return None
