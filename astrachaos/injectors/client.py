"""Client injectors: faults inside the driver call path, on real driver exception classes."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from astrachaos.errors import EnvironmentProblem
from astrachaos.injectors.interface import (
    ClientAction,
    ConnectOverrides,
    Counters,
    InjectorContext,
    InjectorStats,
)

DriverError = Literal[
    "WriteTimeout",
    "Unavailable",
    "OperationTimedOut",
    "NoHostAvailable",
    "Overloaded",
    "InvalidRequest",
    "WriteFailure",
    "ServerError",
]


def driver_error(name: DriverError) -> BaseException:
    """An instance of the driver's own exception class for `name`, as the driver would raise it."""
    import cassandra
    from cassandra import protocol
    from cassandra.cluster import NoHostAvailable

    injected = "injected by astrachaos"
    error: BaseException
    match name:
        case "WriteTimeout":
            error = cassandra.WriteTimeout(
                f"Coordinator node timed out waiting for replica nodes' responses ({injected})",
                write_type=cassandra.WriteType.SIMPLE,
                consistency=cassandra.ConsistencyLevel.LOCAL_QUORUM,
                required_responses=2,
                received_responses=1,
            )
        case "Unavailable":
            error = cassandra.Unavailable(
                f"Cannot achieve consistency level LOCAL_QUORUM ({injected})",
                consistency=cassandra.ConsistencyLevel.LOCAL_QUORUM,
                required_replicas=2,
                alive_replicas=1,
            )
        case "OperationTimedOut":
            error = cassandra.OperationTimedOut(errors={"client": injected})
        case "NoHostAvailable":
            error = NoHostAvailable("Unable to complete the operation against any hosts", {})
        case "Overloaded":
            error = protocol.OverloadedErrorMessage(0x1001, f"Overloaded ({injected})", None)
        case "InvalidRequest":
            error = cassandra.InvalidRequest(f"Invalid request ({injected})")
        case "WriteFailure":
            error = cassandra.WriteFailure(
                f"Replica(s) failed to execute write ({injected})",
                write_type=cassandra.WriteType.SIMPLE,
                consistency=cassandra.ConsistencyLevel.LOCAL_QUORUM,
                required_responses=2,
                received_responses=1,
                failures=1,
            )
        case "ServerError":
            error = protocol.ServerError(0x0000, f"Server error ({injected})", None)
    return error


class ClientParams(BaseModel):
    """Parameters of the client injector."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal[
        "fail", "latency", "latency-after", "applied-then-error", "drop", "clock-skew", "session-reset"
    ] = Field("fail", description="What to do to an affected statement (session-reset: once a window).")
    error: DriverError = Field("WriteTimeout", description="fail: the driver exception class raised.")
    errors: list[DriverError] = Field(
        default_factory=list, description="fail: pick one of these at random per request instead."
    )
    latency_ms: float = Field(100, ge=0, description="latency / latency-after: added delay.")
    skew_ms: float = Field(0, description="clock-skew: shift of the affected writers' clocks.")
    writers: list[int] | None = Field(None, description="Only these writers (none: all).")


class ClientInjector:
    """Decides, per statement, whether and how to interfere — with `probability` of the schedule."""

    name: ClassVar[str] = "client"
    kind: ClassVar[str] = "client"
    Params: ClassVar[type[BaseModel]] = ClientParams

    def __init__(self, params: ClientParams, context: InjectorContext) -> None:
        self._params = params
        self._context = context
        self._counters = Counters()

    def prepare(self) -> ConnectOverrides | None:
        """Nothing to set up: the hook goes in when applied."""
        return None

    def apply(self) -> None:
        """Start interfering with statements (session-reset: reset the session now)."""
        if self._params.action == "session-reset":
            if self._context.reset_session is None:
                raise EnvironmentProblem("session-reset: no session to reset yet")
            self._counters.seen("session-reset")
            self._context.reset_session()
            return
        self._context.client_hooks.add(self._decide)

    def rollback(self) -> None:
        """Stop interfering."""
        self._context.client_hooks.remove(self._decide)

    def close(self) -> None:
        """Nothing to release."""

    def stats(self) -> InjectorStats:
        """Requests seen while applied, and what was injected."""
        return self._counters.stats(self.name, self.kind)

    def _decide(self, writer: int, records: int) -> ClientAction | None:
        p = self._params
        if p.writers is not None and writer not in p.writers:
            return None
        if p.action == "clock-skew":  # a clock is skewed for every write, not a fraction
            self._counters.seen("clock-skew")
            return ClientAction(timestamp_skew_us=int(p.skew_ms * 1000))
        if self._context.rng.random() >= self._context.probability:
            self._counters.seen(None)
            return None
        return self._action()

    def _action(self) -> ClientAction:
        p = self._params
        delay_s = p.latency_ms / 1000
        action: ClientAction
        label: str = p.action
        match p.action:
            case "fail":
                name = self._context.rng.choice(p.errors) if p.errors else p.error
                action, label = ClientAction(fail_with=driver_error(name)), name
            case "latency":
                action = ClientAction(delay_before_s=delay_s)
            case "latency-after":
                action = ClientAction(delay_after_s=delay_s)
            case "applied-then-error":
                action = ClientAction(error_after_ack=driver_error("OperationTimedOut"))
            case "drop":
                action = ClientAction(drop=True)
            case "clock-skew" | "session-reset":
                raise AssertionError("handled before sampling")
            case _:
                raise AssertionError(p.action)
        self._counters.seen(label)
        return action
