"""The instrumented driver call path: statements from records, outcomes published as events.

Every write of every application pattern goes through `WriteChannel.send`, so the ledger learns
what the driver really said, whatever the application chose to log. Client-side injectors hook
in here too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from astrachaos.driver.inflight import InFlight
from astrachaos.driver.table import RunTable
from astrachaos.events import DriverOutcome, EventBus, WriteCompleted
from astrachaos.injectors.interface import ClientHooks
from astrachaos.scenario import StatementKind
from astrachaos.workload.delays import DelayLine
from astrachaos.workload.plan import PlannedRecord

_INDETERMINATE = {"OperationTimedOut", "WriteTimeout", "WriteFailure", "ConnectionShutdown"}
_NEVER_SENT = {"RequestThrottlingError", "TimedOutInQueue", "NoConnectionsAvailable", "ConnectionBusy"}
Answered = Callable[[BaseException | None], None]


def completion(
    ids: tuple[int, ...], attempt: int, submitted_ns: int, error: BaseException | None
) -> WriteCompleted:
    """The event of a statement's records answered now: the driver's `error`, or None (acked)."""
    return WriteCompleted(
        record_ids=ids,
        outcome=outcome_of(error),
        attempts=attempt,
        submitted_ns=submitted_ns,
        completed_ns=time.monotonic_ns(),
        error_class=None if error is None else type(error).__name__,
        error_message=None if error is None else str(error)[:300],
    )


def outcome_of(error: BaseException | None) -> DriverOutcome:
    """What a driver answer means for the records of the statement.

    A timeout (client or coordinator) or a connection closed under the request leaves it
    unknown whether the write was applied; a request the client never sent is dropped; any other
    error is a failure the server reported before applying.
    """
    if error is None:
        return DriverOutcome.ACKED
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & _NEVER_SENT:
        return DriverOutcome.DROPPED
    if names & _INDETERMINATE:
        return DriverOutcome.INDETERMINATE
    if "NoHostAvailable" in names:
        per_host = getattr(error, "errors", None) or {}
        inner = [outcome_of(e) for e in per_host.values() if isinstance(e, BaseException)]
        if DriverOutcome.INDETERMINATE in inner:
            return DriverOutcome.INDETERMINATE
    return DriverOutcome.FAILED


class Channel(Protocol):
    """What an application pattern writes through (one target, or a dual write)."""

    corruptions: dict[int, Corruption]

    def groups(self, batch: Sequence[PlannedRecord]) -> list[Sequence[PlannedRecord]]:
        """The statements a batch becomes."""
        ...

    def send(self, group: Sequence[PlannedRecord], attempt: int = 1) -> Future[None]:
        """Send one statement."""
        ...

    def submit(self, group: Sequence[PlannedRecord], attempt: int, on_done: Answered) -> None:
        """Send one statement; `on_done(error or None)` runs once, never on the driver's thread."""
        ...

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is in flight."""
        ...

    @property
    def in_flight(self) -> int:
        """Statements unanswered."""
        ...


@dataclass(frozen=True)
class Corruption:
    """What a careless application does to a record on its way out (partial-silent-loss)."""

    wrong_partition: bool = False
    null_payload: bool = False


class WriteChannel:
    """Turns groups of planned records into statements, sends them, publishes their outcomes."""

    def __init__(
        self,
        sessions: Any,
        table: RunTable,
        run_id: str,
        statement: StatementKind,
        ttl_s: int | None,
        buckets: int,
        bus: EventBus,
        idempotent: bool = True,
        request_timeout_s: float = 15.0,
    ) -> None:
        self._sessions = sessions
        self._table = table
        self._run_id = run_id
        self._kind = statement
        self._ttl = ttl_s
        self._buckets = buckets
        self._bus = bus
        self._idempotent = idempotent
        self.corruptions: dict[int, Corruption] = {}
        self.hooks: ClientHooks | None = None
        self._timeout_s = request_timeout_s
        self._delays = DelayLine()
        self._in_flight = InFlight()
        self._cql_text = self._cql()
        self._batched = statement in (StatementKind.LOGGED_BATCH, StatementKind.UNLOGGED_BATCH)
        self._plain = statement is StatementKind.INSERT
        # A list append applied twice appends twice: the driver must never retry one itself.
        self._mark_idempotent = idempotent and statement not in (StatementKind.LWT, StatementKind.APPEND)

    def groups(self, batch: Sequence[PlannedRecord]) -> list[Sequence[PlannedRecord]]:
        """The statements a batch becomes: one per record, or one batch statement for all."""
        if self._kind in (StatementKind.LOGGED_BATCH, StatementKind.UNLOGGED_BATCH):
            return [batch]
        return [(planned,) for planned in batch]

    def send(self, group: Sequence[PlannedRecord], attempt: int = 1) -> Future[None]:
        """Send one statement; the future resolves when the driver answers (or raises its error)."""
        done: Future[None] = Future()
        self.submit(group, attempt, lambda error: _resolve(done, error))
        return done

    def submit(self, group: Sequence[PlannedRecord], attempt: int, on_done: Answered) -> None:
        """Send one statement; `on_done(error or None)` once the driver answers.

        The outcome is published first (ledger, statistics), then `on_done` runs, on the
        session's completion thread (or this one, for a statement refused before it left).
        Client injectors act here: a statement may fail before it is sent, wait, be dropped while
        reported as written, or be sent and then reported as failed.
        """
        ids = tuple([p.record.record_id for p in group])
        submitted = time.monotonic_ns()
        self._in_flight.started()

        def finish(error: BaseException | None) -> None:
            self._publish(ids, attempt, submitted, error)
            on_done(error)

        action = self.hooks.decide(group[0].record.writer, len(group)) if self.hooks else None
        if action is None:
            self._dispatch(group, finish, 0)
        elif action.fail_with is not None:
            self._later(action.delay_before_s, lambda: finish(action.fail_with))
        elif action.drop:
            self._later(action.delay_before_s, lambda: finish(None))
        else:
            reply = _held(finish, action.delay_after_s, action.error_after_ack, self._timeout_s, self._later)
            skew = action.timestamp_skew_us
            self._later(action.delay_before_s, lambda: self._dispatch(group, reply, skew))

    def _dispatch(
        self, group: Sequence[PlannedRecord], finish: Callable[[BaseException | None], None], skew_us: int
    ) -> None:
        try:
            session = self._sessions.current()
            statement = self._statement(session, group, skew_us)
        except Exception as error:  # refused before it left: closed session, unpreparable, ...
            finish(error)
            return
        session.throttled.submit(statement, lambda _response, error: finish(error))

    def _later(self, delay_s: float, fn: Callable[[], None]) -> None:
        if delay_s > 0:
            self._delays.call_later(delay_s, fn)
        else:
            fn()

    def _publish(
        self, ids: tuple[int, ...], attempt: int, submitted: int, error: BaseException | None
    ) -> None:
        self._bus.publish(completion(ids, attempt, submitted, error))
        self._in_flight.answered()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no statement is in flight; False if some still are after `timeout_s`."""
        return self._in_flight.wait_idle(timeout_s)

    @property
    def in_flight(self) -> int:
        """Statements sent and not yet answered."""
        return self._in_flight.count

    def _statement(self, session: Any, group: Sequence[PlannedRecord], skew_us: int) -> Any:
        stamp = time.time_ns() // 1000 + skew_us  # per attempt: a retry is a write of its own
        prepared = session.prepared(self._cql_text)
        if self._plain and len(group) == 1 and not self.corruptions:  # the usual statement
            planned = group[0]
            r = planned.record
            statement = prepared.bind(
                (self._run_id, r.bucket, r.key, r.record_id, r.writer, r.batch, planned.payload, stamp)
            )
            statement.is_idempotent = self._mark_idempotent
            return statement
        bound = [prepared.bind(self._bound_values(p, stamp)) for p in group]
        if len(bound) == 1 and not self._batched:
            statement = bound[0]
        else:
            statement = session.batch(logged=self._kind is StatementKind.LOGGED_BATCH)
            for item in bound:
                statement.add(item)
        statement.is_idempotent = self._mark_idempotent
        return statement

    def _cql(self) -> str:
        if self._kind is StatementKind.APPEND:
            return self._table.append_cql(self._ttl)
        return self._table.insert_cql(self._ttl, if_not_exists=self._kind is StatementKind.LWT)

    def _bound_values(self, planned: PlannedRecord, stamp: int) -> tuple[Any, ...]:
        """The values in the order the statement's markers take them (see RunTable)."""
        values = self._values(planned)
        if self._kind is StatementKind.LWT:  # a conditional insert carries no timestamp
            return values
        if self._kind is StatementKind.APPEND:
            run_id, bucket, key, record_id, _, _, payload = values
            return (stamp, record_id, payload, [record_id], run_id, bucket, key)
        return (*values, stamp)

    def _values(self, planned: PlannedRecord) -> tuple[Any, ...]:
        record = planned.record
        bucket, payload = record.bucket, planned.payload
        corruption = self.corruptions.get(record.record_id)
        if corruption is not None:
            if corruption.wrong_partition:
                bucket = (bucket + 1) % self._buckets
            if corruption.null_payload:
                payload = None  # type: ignore[assignment]
        return (
            self._run_id,
            bucket,
            record.key,
            record.record_id,
            record.writer,
            record.batch,
            payload,
        )


def _resolve(future: Future[None], error: BaseException | None) -> None:
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _held(
    finish: Callable[[BaseException | None], None],
    delay_s: float,
    error_after_ack: BaseException | None,
    timeout_s: float,
    later: Callable[[float, Callable[[], None]], None],
) -> Callable[[BaseException | None], None]:
    """Wrap `finish`: hold the answer back, or turn an acknowledgement into an error."""
    if not delay_s and error_after_ack is None:
        return finish

    def reply(error: BaseException | None) -> None:
        if error is None and error_after_ack is not None:
            error = error_after_ack  # applied, yet the caller is told it failed
        if delay_s >= timeout_s:  # held past the client timeout: the client gives up first
            from cassandra import OperationTimedOut

            later(max(0.0, timeout_s), lambda: finish(OperationTimedOut(errors={"client": "timed out"})))
        else:
            later(delay_s, lambda: finish(error))

    return reply
