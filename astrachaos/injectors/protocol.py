"""The protocol injector: real CQL ERROR frames, or forwarded writes whose answer is lost."""

from __future__ import annotations

import random
import re
import threading
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from astrachaos.injectors.interface import (
    ConnectOverrides,
    Counters,
    InjectorContext,
    InjectorStats,
)
from astrachaos.injectors.network import connect_through, proxy_targets
from astrachaos.proxy import hub
from astrachaos.proxy.cql import Opcode, Request, Statement
from astrachaos.proxy.error_frames import ErrorKind
from astrachaos.proxy.interception import Action, Decision
from astrachaos.proxy.server import ProxySet

OPCODES = {"query": Opcode.QUERY, "execute": Opcode.EXECUTE, "batch": Opcode.BATCH}
OpcodeName = Literal["query", "execute", "batch"]
_WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


class ProtocolParams(BaseModel):
    """Parameters of the protocol injector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["error", "forward-then-timeout", "forward-then-drop"] = Field(
        "error",
        description="error: answer without forwarding; forward-then-timeout: forward, answer "
        "`error` instead of the result; forward-then-drop: forward, swallow the result.",
    )
    error: Literal["overloaded", "write_timeout", "unavailable", "server_error", "is_bootstrapping"] = Field(
        "write_timeout", description="The ERROR sent (modes error and forward-then-timeout)."
    )
    opcodes: list[OpcodeName] = Field(
        default_factory=lambda: list[OpcodeName](["query", "execute", "batch"]),
        description="Requests targeted.",
    )
    keyspace: str | None = Field(None, description="Only statements on this keyspace (qualified).")
    table: str | None = Field(None, description="Only statements on this table.")
    writes_only: bool = Field(True, description="Only INSERT, UPDATE and DELETE statements.")


def _cql_name(name: str | None) -> str | None:
    if name is None:
        return None
    return name[1:-1] if name.startswith('"') else name.lower()


class ProtocolInjector:
    """Answers a fraction (the probability) of matching requests on the proxied connections."""

    name: ClassVar[str] = "protocol"
    kind: ClassVar[str] = "protocol"
    Params: ClassVar[type[BaseModel]] = ProtocolParams

    def __init__(self, params: ProtocolParams, context: InjectorContext) -> None:
        self._params = params
        self._context = context
        self._shared: ProxySet | None = context.proxies
        self._targets, self._port = ([], 0) if self._shared is not None else proxy_targets(context)
        self._rng = random.Random(context.rng.randrange(2**32))
        self._opcodes = {OPCODES[o] for o in params.opcodes}
        self._keyspace = _cql_name(params.keyspace)
        self._table = _cql_name(params.table)
        self._action = {
            "error": Action.REPLY,
            "forward-then-timeout": Action.REPLACE,
            "forward-then-drop": Action.DROP,
        }[params.mode]
        self._error = ErrorKind(params.error)
        self._active = threading.Event()
        self._counters = Counters()
        self._proxies: ProxySet | None = None

    def prepare(self) -> ConnectOverrides | None:
        """Start (or share) the proxies, CQL-aware; the driver must connect through them."""
        if self._proxies is None:
            if self._shared is not None:
                self._proxies = self._shared
            else:
                self._proxies = hub.acquire(self._targets, self._port, random_seed=self._rng.randrange(2**32))
            self._proxies.add_policy(self.decide)
        return None if self._shared is not None else connect_through(self._proxies)

    def apply(self) -> None:
        """Start answering matching requests."""
        if self._proxies is None:
            self.prepare()
        self._active.set()

    def rollback(self) -> None:
        """Stop (idempotent); requests already forwarded keep their fate."""
        self._active.clear()

    def close(self) -> None:
        """Roll back, detach from the proxies and release them."""
        self.rollback()
        proxies, self._proxies = self._proxies, None
        if proxies is not None:
            proxies.remove_policy(self.decide)
            if proxies is not self._shared:
                hub.release(proxies)

    def stats(self) -> InjectorStats:
        """Matching requests seen while active, and how many were injected, by error."""
        return self._counters.stats(self.name, self.kind)

    def decide(self, request: Request) -> Decision | None:
        """The fate of one request (called on the proxy loop)."""
        if not self._active.is_set() or not self.matches(request):
            return None
        if self._rng.random() >= self._context.probability:
            self._counters.seen(None)
            return None
        label = "dropped" if self._action is Action.DROP else self._error.value
        self._counters.seen(label)
        return Decision(self._action, self._error, self._context.label or self.name)

    def matches(self, request: Request) -> bool:
        """Whether the request is targeted: opcode, and a statement on the keyspace/table."""
        if request.opcode not in self._opcodes:
            return False
        return any(self._statement_matches(s) for s in request.statements)

    def _statement_matches(self, statement: Statement) -> bool:
        if statement.text is None:  # an EXECUTE whose PREPARE this proxy never saw
            return self._keyspace is None and self._table is None and not self._params.writes_only
        if self._params.writes_only and not _WRITE.match(statement.text):
            return False
        if self._keyspace is not None and statement.keyspace != self._keyspace:
            return False
        return self._table is None or statement.table == self._table
