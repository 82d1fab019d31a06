"""Driver options: what a profile (and a scenario, through its overrides) sets on the driver.

The field names follow the Scala seed's HOCON keys; an option the Python driver cannot apply
says so in its description (`NOT_APPLIED`) and `config show` marks it.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NOT_APPLIED = "Recorded but not applied: "


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryOptions(_Options):
    """How failed requests are retried: by the driver, or by the application with backoff."""

    policy: Literal["driver-default", "fallthrough", "exponential"] = Field(
        "exponential",
        description="driver-default: the driver's RetryPolicy (retries some errors on the next "
        "host, ignoring idempotence); fallthrough: the driver never retries; exponential: the "
        "driver never retries and the application retries retryable errors with backoff.",
    )
    max_attempts: int = Field(5, ge=1, le=100, description="Attempts per request, first included.")
    base_delay_ms: int = Field(100, ge=0, description="Backoff before the second attempt.")
    max_delay_ms: int = Field(5000, ge=0, description="Upper bound of one backoff pause.")


class SpeculativeExecutionOptions(_Options):
    """Start another attempt on the next host when the first is slow (idempotent requests only)."""

    delay_ms: int = Field(..., ge=0, description="Wait before each speculative attempt.")
    max_attempts: int = Field(2, ge=1, le=10, description="Speculative attempts per request.")


class DriverOptions(_Options):
    """Every driver option the seed exposed; the field names follow its HOCON keys."""

    request_timeout_ms: int = Field(15000, gt=0, description="Client timeout of one request.")
    consistency: str = Field("LOCAL_QUORUM", description="Consistency level of every request.")
    serial_consistency: str | None = Field(
        None, description="SERIAL or LOCAL_SERIAL for LWT; none: the server's default (SERIAL)."
    )
    default_idempotence: bool = Field(
        True, description="Idempotence of statements given as CQL text through the throttler."
    )
    max_local_connections_per_host: int = Field(
        12,
        ge=1,
        description=NOT_APPLIED + "protocol v3+ uses one connection per host in the Python "
        "driver (set_core_connections_per_host raises).",
    )
    max_requests_per_connection: int = Field(
        2048,
        ge=1,
        le=16384,
        description="Requests in flight per host connection (the throttler keeps them below the "
        "driver's 32768 stream ids, so that its orphaned-stream replacement still works).",
    )
    max_queue_size: int = Field(
        25000, ge=0, description="Throttler queue; a request beyond it fails at once (throttled)."
    )
    max_concurrent_requests: int = Field(
        15000, ge=1, description="Concurrency throttler: requests in flight at once."
    )
    max_requests_per_second: int | None = Field(
        None,
        gt=0,
        description="Rate throttler: requests started per second; given without `throttler`, "
        "it selects the rate throttler.",
    )
    throttler: Literal["concurrency", "rate", "none"] = Field(
        "concurrency", description="Client-side request throttler (the Python driver has none)."
    )
    retry: RetryOptions = Field(default_factory=RetryOptions, description="Retry policy.")
    speculative_execution: SpeculativeExecutionOptions | None = Field(
        None, description="Constant speculative execution; none: off."
    )
    heartbeat_interval_s: float = Field(
        30.0, ge=0, description="Idle heartbeat interval; 0 disables (idle_heartbeat_interval)."
    )
    idle_heartbeat_timeout_s: float = Field(
        30.0, gt=0, description="A heartbeat unanswered this long defuncts the connection."
    )
    protocol_version: int | None = Field(
        None, ge=3, le=5, description="Native protocol version; none: negotiate."
    )
    compression: Literal["none", "lz4", "snappy"] = Field(
        "none", description="Frame compression (v5 supports only lz4; needs the lz4 package)."
    )
    tcp_nodelay: bool = Field(True, description="TCP_NODELAY on every connection.")
    keepalive: bool = Field(True, description="SO_KEEPALIVE on every connection.")
    connect_timeout_s: float = Field(5.0, gt=0, description="Timeout of opening one connection.")

    @field_validator("consistency")
    @classmethod
    def _known_consistency(cls, value: str) -> str:
        from cassandra import ConsistencyLevel

        name = value.upper()
        if name not in ConsistencyLevel.name_to_value:
            known = ", ".join(ConsistencyLevel.name_to_value)
            raise ValueError(f"unknown consistency level {value!r}; the driver knows {known}")
        return name

    @field_validator("serial_consistency")
    @classmethod
    def _serial_level(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in ("SERIAL", "LOCAL_SERIAL"):
            raise ValueError(f"serial consistency must be SERIAL or LOCAL_SERIAL, not {value!r}")
        return None if value is None else value.upper()

    @model_validator(mode="before")
    @classmethod
    def _rate_selects_rate_throttler(cls, data: Any) -> Any:
        # Only when `throttler` is not given: an explicit choice always wins.
        if (
            isinstance(data, dict)
            and "throttler" not in data
            and data.get("max_requests_per_second") is not None
        ):
            data = {**data, "throttler": "rate"}
        return data

    @model_validator(mode="after")
    def _rate_needs_a_rate(self) -> Self:
        if self.throttler == "rate" and self.max_requests_per_second is None:
            raise ValueError("throttler: rate needs max_requests_per_second")
        return self


NOT_APPLIED_KEYS = frozenset(
    f"driver.{name}"
    for name, info in DriverOptions.model_fields.items()
    if (info.description or "").startswith(NOT_APPLIED)
)
