"""A drop-in for the driver's Session that puts client faults on every write and records it.

Reads, schema changes and anything that writes no row pass straight to the real session. Each
write is read (table, kind, column values), offered to the client hooks (the client injector's
actions and the seed's manual controls), sent or not as the action says, and reported to an
observer with what the calling code was told.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from astrachaos.driver.inflight import InFlight
from astrachaos.dropin.future import ChaosFuture
from astrachaos.dropin.statements import RowWrite, rows_written
from astrachaos.injectors.interface import ClientAction, ClientHooks
from astrachaos.workload.delays import DelayLine

Finish = Callable[[Any, BaseException | None], None]  # (rows, error)
Sender = Callable[[Any, Any, dict[str, Any], int], "Outgoing"]  # (query, params, options, skew)
_NOT_SET: Any = object()


class WriteObserver(Protocol):
    """Learns of every write: when it leaves (or is refused) and what the caller was told."""

    def sent(self, rows: list[RowWrite], timestamp_us: int | None, injected: str | None) -> Any:
        """The write goes out now (timestamp None: it never reaches the server); returns a token."""

    def answered(self, token: Any, error: BaseException | None) -> None:
        """The calling code was told: success (None) or this error."""


@dataclass(frozen=True)
class Outgoing:
    """A request built and about to leave: the driver's ResponseFuture, its write timestamp (µs),
    and `go(finish)` that sends it and calls `finish(rows, error)` with the answer."""

    real: Any
    timestamp_us: int | None
    go: Callable[[Finish], None]


@dataclass
class SessionStats:
    """What the session saw: writes, injections, by type (the seed's getStats)."""

    requests: int = 0
    injected: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def seen(self, label: str | None) -> None:
        """Count one write, injected as `label` (None: untouched)."""
        with self.lock:
            self.requests += 1
            if label is not None:
                self.injected += 1
                self.by_type[label] += 1

    def reset(self) -> None:
        """Start counting again."""
        with self.lock:
            self.requests, self.injected = 0, 0
            self.by_type.clear()


def label_of(action: ClientAction | None) -> str | None:
    """The name of what an action does, for statistics and the capture ledger."""
    if action is None:
        return None
    if action.fail_with is not None:
        return type(action.fail_with).__name__
    if action.drop:
        return "drop"
    if action.error_after_ack is not None:
        return "applied-then-error"
    if action.delay_after_s:
        return "latency-after"
    if action.delay_before_s:
        return "latency"
    if action.timestamp_skew_us:
        return "clock-skew"
    return None


class ChaosSession:
    """The user's session with faults on its writes; every other attribute is the real session's."""

    def __init__(
        self,
        session: Any,
        hooks: ClientHooks,
        observer: WriteObserver,
        stats: SessionStats | None = None,
        sender: Sender | None = None,
        writer: int = 0,
    ) -> None:
        self.__dict__["_session"] = session  # before __getattr__ can be consulted
        self._hooks = hooks
        self._observer = observer
        self.stats = stats or SessionStats()
        self._send = sender or direct_sender(session)
        self._writer = writer
        self._delays = DelayLine()
        self._in_flight = InFlight()

    @property
    def wrapped(self) -> Any:
        """The real driver session underneath."""
        return self._session

    def execute(
        self,
        query: Any,
        parameters: Any = None,
        timeout: Any = _NOT_SET,
        trace: bool = False,
        custom_payload: Any = None,
        execution_profile: Any = _NOT_SET,
        paging_state: Any = None,
        host: Any = None,
        execute_as: Any = None,
    ) -> Any:
        """As `Session.execute`: wait for the answer (the driver's, or an injected one)."""
        return self.execute_async(
            query, parameters, trace, custom_payload, timeout, execution_profile, paging_state, host,
            execute_as,
        ).result()

    def execute_async(
        self,
        query: Any,
        parameters: Any = None,
        trace: bool = False,
        custom_payload: Any = None,
        timeout: Any = _NOT_SET,
        execution_profile: Any = _NOT_SET,
        paging_state: Any = None,
        host: Any = None,
        execute_as: Any = None,
    ) -> Any:
        """As `Session.execute_async`; a write returns a ChaosFuture (a ResponseFuture look-alike)."""
        options = _options(
            trace=trace, custom_payload=custom_payload, timeout=timeout,
            execution_profile=execution_profile, paging_state=paging_state, host=host,
            execute_as=execute_as,
        )
        rows = rows_written(query, parameters, self._session)
        if rows is None:
            return self._session.execute_async(query, parameters, **options)
        action = self._hooks.decide(self._writer, len(rows))
        label = label_of(action)
        self.stats.seen(label)
        future = ChaosFuture()
        token: list[Any] = []
        once = threading.Lock()
        self._in_flight.started()

        def finish(answer: Any, error: BaseException | None) -> None:
            if not once.acquire(blocking=False):  # the driver may call an errback twice
                return
            if not token:  # refused before it left
                token.append(self._observer.sent(rows, None, label))
            self._observer.answered(token[0], error)
            future.complete(answer, error)
            self._in_flight.answered()

        def dispatch(reply: Finish, skew_us: int) -> None:
            try:
                outgoing = self._send(query, parameters, options, skew_us)
            except Exception as error:  # refused before it left: closed session, bad values
                reply(None, error)
                return
            future.real = outgoing.real
            token.append(self._observer.sent(rows, outgoing.timestamp_us, label))
            try:
                outgoing.go(reply)
            except Exception as error:
                reply(None, error)

        if action is None:
            dispatch(finish, 0)
        elif action.fail_with is not None:
            error = action.fail_with
            self._later(action.delay_before_s, lambda: finish(None, error))
        elif action.drop:
            self._later(action.delay_before_s, lambda: finish([], None))
        else:
            reply = self._held(finish, action, self._timeout_s(timeout, execution_profile))
            self._later(action.delay_before_s, lambda: dispatch(reply, action.timestamp_skew_us))
        return future

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every write is answered; False if some still are not after `timeout_s`."""
        return self._in_flight.wait_idle(timeout_s)

    @property
    def in_flight(self) -> int:
        """Writes not answered yet."""
        return self._in_flight.count

    def prepare(self, query: str, custom_payload: Any = None, keyspace: str | None = None) -> Any:
        """As `Session.prepare` (preparing is never faulted)."""
        return self._session.prepare(query, custom_payload, keyspace)

    def execute_concurrent(self, statements_and_parameters: Any, **kwargs: Any) -> Any:
        """As `cassandra.concurrent.execute_concurrent`, through this session."""
        from cassandra.concurrent import execute_concurrent

        return execute_concurrent(self, statements_and_parameters, **kwargs)

    def execute_concurrent_with_args(self, statement: Any, parameters: Any, **kwargs: Any) -> Any:
        """As `cassandra.concurrent.execute_concurrent_with_args`, through this session."""
        from cassandra.concurrent import execute_concurrent_with_args

        return execute_concurrent_with_args(self, statement, parameters, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_session"], name)

    def _later(self, delay_s: float, fn: Callable[[], None]) -> None:
        if delay_s > 0:
            self._delays.call_later(delay_s, fn)
        else:
            fn()

    def _held(self, finish: Finish, action: ClientAction, timeout_s: float | None) -> Finish:
        """Hold the answer back, or turn an acknowledgement into the action's error."""
        delay_s, error_after_ack = action.delay_after_s, action.error_after_ack
        if not delay_s and error_after_ack is None:
            return finish

        def reply(answer: Any, error: BaseException | None) -> None:
            if error is None and error_after_ack is not None:
                answer, error = None, error_after_ack  # applied, yet the caller is told it failed
            if timeout_s is not None and delay_s >= timeout_s:  # the client gives up first
                from cassandra import OperationTimedOut

                timed_out = OperationTimedOut(errors={"client": "timed out (latency-after)"})
                self._later(timeout_s, lambda: finish(None, timed_out))
            else:
                self._later(delay_s, lambda: finish(answer, error))

        return reply

    def _timeout_s(self, timeout: Any, execution_profile: Any) -> float | None:
        if timeout is not _NOT_SET:
            return None if timeout is None else float(timeout)
        try:
            if execution_profile is _NOT_SET:
                from cassandra.cluster import EXEC_PROFILE_DEFAULT

                execution_profile = EXEC_PROFILE_DEFAULT
            profile = self._session._maybe_get_execution_profile(execution_profile)
            return float(profile.request_timeout)
        except Exception:  # legacy configuration: the session's own default
            return float(getattr(self._session, "default_timeout", 10.0))


def _options(**given: Any) -> dict[str, Any]:
    """The execute_async keyword arguments the caller actually gave."""
    defaults: dict[str, Any] = {"trace": False, "custom_payload": None, "paging_state": None}
    defaults.update(host=None, execute_as=None)
    return {
        name: value
        for name, value in given.items()
        if value is not _NOT_SET and not (name in defaults and value == defaults[name])
    }


def direct_sender(session: Any) -> Sender:
    """Send through the driver session itself, its client timestamp shifted by `skew_us`.

    The same steps as `Session.execute_async`, with the request built first so that its write
    timestamp is known (and can be skewed) before it leaves.
    """

    def send(query: Any, parameters: Any, options: dict[str, Any], skew_us: int) -> Outgoing:
        real = build_request(session, query, parameters, options, skew_us)

        def go(finish: Finish) -> None:
            send_request(session, real)
            real.add_callbacks(lambda rows: finish(rows, None), lambda error: finish(None, error))

        return Outgoing(real, getattr(real.message, "timestamp", None), go)

    return send


def build_request(session: Any, query: Any, parameters: Any, options: dict[str, Any], skew_us: int) -> Any:
    """Build one request, its client timestamp shifted by `skew_us`; the driver's ResponseFuture."""
    from cassandra.cluster import _NOT_SET as DRIVER_NOT_SET
    from cassandra.cluster import EXEC_PROFILE_DEFAULT

    custom_payload = dict(options.get("custom_payload") or {})
    real = session._create_response_future(
        query,
        parameters,
        options.get("trace", False),
        custom_payload,
        options.get("timeout", DRIVER_NOT_SET),
        options.get("execution_profile", EXEC_PROFILE_DEFAULT),
        options.get("paging_state"),
        options.get("host"),
    )
    if skew_us and getattr(real.message, "timestamp", None) is not None:
        real.message.timestamp += skew_us
    elif skew_us:
        real.message.timestamp = time.time_ns() // 1000 + skew_us
    real._protocol_handler = session.client_protocol_handler
    return real


def send_request(session: Any, real: Any) -> None:
    """Send a request built by `build_request` (the rest of `Session.execute_async`)."""
    session._on_request(real)
    real.send_request()
