"""The scenario model: what a YAML file in `scenarios/` may say, every field with a default."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeyStrategy(StrEnum):
    """How record keys are made."""

    UNIQUE = "unique"  # the record's sequence number: never collides
    TIMESTAMP_MS = "timestamp_ms"  # wall-clock milliseconds: collides under load, like real apps
    SHARED = "shared"  # every writer writes the same keys (its i-th record has key i): updates


class StatementKind(StrEnum):
    """What one write statement is."""

    INSERT = "insert"
    UNLOGGED_BATCH = "unlogged_batch"
    LOGGED_BATCH = "logged_batch"
    LWT = "lwt"  # INSERT ... IF NOT EXISTS
    APPEND = "append"  # UPDATE ... SET applied = applied + [record_id]: applied twice if retried


class PatternName(StrEnum):
    """How the simulated application treats the driver (where silent loss is born)."""

    CAREFUL = "careful"
    FIRE_AND_FORGET = "fire-and-forget"
    UPLOADER = "uploader"
    EMPTY_RETRY = "empty-retry"


class DualWrite(StrEnum):
    """How the application writes a record to two targets."""

    SYNC_BOTH = "sync-both"  # success only if both succeed; the caller sees the primary's error
    PRIMARY_THEN_ASYNC_SECONDARY = "primary-then-async-secondary"  # secondary after, not awaited
    BEST_EFFORT_SECONDARY = "best-effort-secondary"  # both at once; secondary errors ignored


class _Overrides(_Strict):
    """Options of which only those written are applied: dumped as written, nothing else."""

    @model_serializer(mode="wrap")
    def _only_what_was_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if key in self.model_fields_set}


class RetryOverrides(_Overrides):
    """Retry options a scenario changes (the rest come from the profile)."""

    policy: Literal["driver-default", "fallthrough", "exponential"] | None = None
    max_attempts: int | None = None
    base_delay_ms: int | None = None
    max_delay_ms: int | None = None


class SpeculativeExecutionOverrides(_Overrides):
    """Speculative-execution options a scenario changes."""

    delay_ms: int | None = None
    max_attempts: int | None = None


class DriverOverrides(_Overrides):
    """Driver options a scenario changes; every field optional, names as in `config show`.

    Only what the YAML sets is applied over the profile's options (`model_fields_set`); the
    loader checks the values, and their combination with the profile, against `DriverOptions`.
    Keys may be dotted (`retry.max_attempts`) and may start with `driver.`.
    """

    request_timeout_ms: int | None = None
    consistency: str | None = None
    serial_consistency: str | None = None
    default_idempotence: bool | None = None
    max_local_connections_per_host: int | None = None
    max_requests_per_connection: int | None = None
    max_queue_size: int | None = None
    max_concurrent_requests: int | None = None
    max_requests_per_second: int | None = None
    throttler: Literal["concurrency", "rate", "none"] | None = None
    retry: RetryOverrides | None = None
    speculative_execution: SpeculativeExecutionOverrides | None = None
    heartbeat_interval_s: float | None = None
    idle_heartbeat_timeout_s: float | None = None
    protocol_version: int | None = None
    compression: Literal["none", "lz4", "snappy"] | None = None
    tcp_nodelay: bool | None = None
    keepalive: bool | None = None
    connect_timeout_s: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _nest_dotted_keys(cls, data: Any) -> Any:
        return nest_dotted(data) if isinstance(data, Mapping) else data

    def as_options(self) -> dict[str, Any]:
        """Only the options the scenario set, nested, ready to overlay on a profile's."""
        return self.model_dump()

    def __bool__(self) -> bool:
        return bool(self.model_fields_set)


def nest_dotted(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`{"retry.max_attempts": 3, "driver.consistency": "ONE"}` as one nested mapping."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        *parents, leaf = str(key).removeprefix("driver.").split(".")
        level = nested
        for part in parents:
            if not isinstance(level.get(part), dict):
                level[part] = {}
            level = level[part]
        if isinstance(value, Mapping):
            value = nest_dotted(value)
            if isinstance(level.get(leaf), dict):
                value = {**level[leaf], **value}
        level[leaf] = value
    return nested


class Secondary(_Strict):
    """The second target of a dual write."""

    profile: str = Field("local", description="Connection profile of the secondary target.")
    keyspace: str = Field("astrachaos_secondary", description="Keyspace of the secondary's run table.")
    strategy: DualWrite = Field(DualWrite.SYNC_BOTH, description="How the app writes both.")
    driver: DriverOverrides = Field(
        default_factory=DriverOverrides, description="Driver-option overrides for the secondary."
    )


class Target(_Strict):
    """Which database to write to, and driver options this scenario changes."""

    profile: str = Field("local", description="Connection profile name (configs/<name>.yaml).")
    keyspace: str | None = Field(
        None, description="Keyspace for the run table; default: the profile's keyspace."
    )
    driver: DriverOverrides = Field(
        default_factory=DriverOverrides,
        description="Driver-option overrides for this scenario (names as in `config show`).",
    )
    secondary: Secondary | None = Field(
        None, description="A second target: the app dual-writes every record."
    )


class Schema(_Strict):
    """The table astrachaos owns for this run's records."""

    table: str = Field("records", description="Table name (astrachaos only writes tables it owns).")
    buckets: int = Field(16, ge=1, le=4096, description="Partitions per run: (run_id, bucket).")
    replication_factor: int = Field(
        1, ge=1, le=9, description="SimpleStrategy RF when astrachaos creates the keyspace."
    )
    ttl_s: int | None = Field(None, ge=1, description="TTL on run data; none keeps it.")


class Workload(_Strict):
    """The load: who writes how many records, how fast, in what shape."""

    writers: int = Field(1, ge=1, le=256, description="Concurrent writer threads.")
    processes: int = Field(
        1,
        ge=1,
        le=64,
        description="Writer processes, each with its own driver Cluster and ledger segment; the "
        "writers are spread over them (at most one process per writer).",
    )
    pin_cpu: bool = Field(
        True,
        description="During the write phase, run all threads of each writer process on one CPU "
        "(process N on the N-th from the last): they share one GIL, and hand-overs across cores "
        "cost more than they give. false: the OS places them.",
    )
    records: int = Field(1000, le=100_000_000, description="Records in total, all writers.")
    batch_size: int = Field(
        100, ge=1, le=100_000, description="Records a writer hands to the app at once."
    )
    max_duration_s: float | None = Field(
        None,
        gt=0,
        description="Stop handing over records after this long; what is still pending is dropped.",
    )
    delay_ms: float = Field(0, ge=0, description="Pause between a writer's batches.")
    stagger_ms: float = Field(0, ge=0, description="Writer w starts w × stagger_ms after writer 0.")
    rate: float | None = Field(
        None, gt=0, description="Target records per second over all writers (none: flat out)."
    )
    payload_bytes: int = Field(64, ge=0, le=1_000_000, description="Payload size per record.")
    key_strategy: KeyStrategy = Field(KeyStrategy.UNIQUE, description="How keys are made.")
    statement: StatementKind = Field(StatementKind.INSERT, description="Statement kind.")
    special_characters: bool = Field(
        False, description="Put quotes, newlines and non-ASCII text into payloads."
    )

    @model_validator(mode="after")
    def _a_process_per_writer_at_most(self) -> Workload:
        if self.processes > self.writers:
            raise ValueError(
                f"processes ({self.processes}) cannot exceed writers ({self.writers}): "
                "the writers are spread over the processes"
            )
        return self

    @field_validator("records")
    @classmethod
    def _at_least_one(cls, records: int) -> int:
        if records < 1:
            raise ValueError(
                f"must be at least 1, not {records}: a run that writes nothing has nothing to "
                "verify and would pass whatever the application does"
            )
        return records


class SessionReset(_Strict):
    """Close and reopen the session mid-stream, with requests in flight."""

    after_records: int = Field(..., ge=1, description="Reset once this many records were handed over.")


class Pattern(_Strict):
    """The application write pattern and its knobs."""

    name: PatternName | str = Field(
        PatternName.CAREFUL,
        description="Application write pattern: built-in, registered plugin, or 'package.module:factory'.",
    )
    max_attempts: int = Field(5, ge=1, le=100, description="careful: attempts per statement.")
    retry_delay_ms: float = Field(
        1000, ge=0, description="uploader: fixed pause before each retry (the seed used 1 s)."
    )
    max_in_flight: int = Field(
        64, ge=1, description="careful: statements awaited concurrently per writer (backpressure)."
    )
    session_reset: SessionReset | None = Field(None, description="Reset the session mid-stream.")
    corrupt_fraction: float = Field(
        0, ge=0, le=1, description="Fraction of records the app corrupts (wrong partition, null)."
    )


    @field_validator("name", mode="after")
    @classmethod
    def _known_pattern(cls, name: PatternName | str) -> PatternName | str:
        """Built-in names become PatternName; any other name must resolve now (at load)."""
        if name in PatternName._value2member_map_:
            return PatternName(name)
        from astrachaos.plugins import load

        load("astrachaos.patterns", str(name), "pattern", ("write", "shutdown"))  # a ValueError if wrong
        return name


class Schedule(_Strict):
    """When an injector is active."""

    start_s: float = Field(0, ge=0, description="Offset from the start of the write phase.")
    duration_s: float | None = Field(None, gt=0, description="How long; none: to the end.")
    repeat_s: float | None = Field(None, gt=0, description="Re-apply every N seconds.")
    probability: float = Field(1, ge=0, le=1, description="Fraction of requests affected.")
    toggle_ms: tuple[float, float] | None = Field(
        None, description="Flip on/off at random intervals within [min, max] ms."
    )


class InjectorSpec(_Strict):
    """One fault: which injector, its parameters, its schedule."""

    name: str = Field(..., description="Registered injector name (see README, Injectors).")
    side: Literal["primary", "secondary"] = Field(
        "primary", description="Dual write: which target the fault is on."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Injector parameters.")
    schedule: Schedule = Field(default_factory=Schedule, description="When it is active.")


class Verify(_Strict):
    """How the run is read back."""

    settle_ms: float = Field(1000, ge=0, description="Wait before re-reading absent keys.")
    read_consistency: str = Field("ONE", description="Consistency level of the first read.")
    reread_consistency: str = Field(
        "ALL", description="Consistency level of the re-read of absent keys (the strongest)."
    )
    page_size: int = Field(5000, ge=1, le=100_000, description="Rows per page.")


class Expect(_Strict):
    """Budgets: a run meets expectations when no count exceeds its budget."""

    lost: int | None = Field(0, ge=0, description="Acknowledged but absent.")
    silent: int | None = Field(0, ge=0, description="App logged success, record not as written.")
    failed: int | None = Field(None, ge=0, description="Loud failures allowed.")
    dropped: int | None = Field(None, ge=0, description="Never sent.")
    indeterminate: int | None = Field(None, ge=0, description="Timed out and absent.")
    overwritten: int | None = Field(None, ge=0, description="Shadowed by another record.")
    corrupted: int | None = Field(None, ge=0, description="Present with a value nobody wrote.")
    unexpected: int | None = Field(None, ge=0, description="Rows nobody attempted.")
    duplicated: int | None = Field(None, ge=0, description="Applied more than once.")
    indeterminate_pct: float | None = Field(None, ge=0, le=100, description="Share timed out.")
    p99_ms: float | None = Field(None, gt=0, description="Write latency p99 budget.")
    min_writes_per_s: float | None = Field(None, gt=0, description="Throughput floor.")


class Scenario(_Strict):
    """A complete scenario: everything a run needs besides the connection secrets."""

    name: str = Field(..., description="Scenario name (the file name without .yaml).")
    description: str = Field("", description="What this scenario shows.")
    random_seed: int | None = Field(
        None, alias="seed", description="Random seed; recorded so a run can be repeated."
    )
    target: Target = Field(default_factory=Target)
    schema_: Schema = Field(default_factory=Schema, alias="schema")
    workload: Workload = Field(default_factory=Workload)
    pattern: Pattern = Field(default_factory=Pattern)
    injectors: tuple[InjectorSpec, ...] = Field(default=(), description="Faults to inject.")
    verify: Verify = Field(default_factory=Verify)
    expect: Expect = Field(default_factory=Expect)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
