"""A driver session behind a request throttler, completing every request on its own thread.

Nothing of ours runs on the driver's I/O thread: its callbacks only hand the answer to the
session's completion thread, which frees the slot, starts the next queued request, expires
queued requests past their deadline in bulk, and runs the caller's completion. The driver's
docs require it: while a callback runs, no socket is read, no heartbeat sent, no host
reconnected.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import replace
from functools import cache
from typing import Any

from astrachaos.driver.throttle import RequestThrottler, ThrottlerStats

log = logging.getLogger(__name__)

Done = Callable[[Any, "BaseException | None"], None]  # (driver response or None, error or None)
EXPIRY_INTERVAL_S = 0.1  # how often queued requests past their deadline are failed, in bulk


class _Request:
    """One statement on its way through the throttler and the driver; answered exactly once."""

    __slots__ = (
        "admitted",
        "answered",
        "deadline",
        "future",
        "on_done",
        "parameters",
        "response",
        "statement",
    )

    def __init__(self, statement: Any, parameters: Any, deadline: float | None, on_done: Done) -> None:
        self.statement = statement
        self.parameters = parameters
        self.deadline = deadline
        self.on_done = on_done
        self.response: Any = None
        self.admitted = False
        self.answered = False
        self.future: Future[Any] | None = None  # execute_async's: cancelled while queued, skipped


class ThrottledSession:
    """A driver session behind a throttler; completions run on the session's own thread.

    `submit` takes a callback (no Future per statement); `execute_async` wraps it in a Future.
    """

    def __init__(
        self,
        session: Any,
        throttler: RequestThrottler,
        *,
        default_timeout_s: float | None = None,
        default_idempotence: bool = True,
        expiry_interval_s: float = EXPIRY_INTERVAL_S,
    ) -> None:
        self.session = session
        self.throttler = throttler
        self._timeout = default_timeout_s
        self._idempotent = default_idempotence
        self._expiry_interval = expiry_interval_s
        self._answers: queue.SimpleQueue[tuple[_Request, BaseException | None]] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        self._duplicates = 0

    def submit(
        self, statement: Any, on_done: Done, parameters: Any = None, timeout: float | None = None
    ) -> None:
        """Send through the throttler; `on_done(response, error)` runs once, on the completion thread.

        The timeout (default: the profile's request timeout) counts from this call, so time
        spent in the throttler queue counts against it, as in the Java driver.
        """
        timeout_s = self._timeout if timeout is None else timeout
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        if isinstance(statement, str):
            statement = self._as_statement(statement)
        self._send(_Request(statement, parameters, deadline, on_done))

    def _send(self, request: _Request) -> None:
        if self._worker is None:
            self._ensure_worker()
        # The usual case, without closures or queue. Admitted means not closed, and the
        # completion thread only ends once the throttler is closed: it is there to answer.
        if self.throttler.try_admit():
            self._start(request)
            return
        self.throttler.submit(
            lambda: self._start(request), lambda e: self._answers.put((request, e)), request.deadline
        )
        self._ensure_worker()  # after the submit: an answer it queued is never left unread

    def _ensure_worker(self) -> None:
        with self._worker_lock:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._complete, name="astrachaos-completions", daemon=True
                )
                self._worker.start()

    def execute_async(
        self, statement: Any, parameters: Any = None, timeout: float | None = None
    ) -> Future[Any]:
        """Submit through the throttler; the future gets the driver's result or its exception."""
        future: Future[Any] = Future()

        def done(response: Any, error: BaseException | None) -> None:
            if future.cancelled():
                return
            try:
                if error is None:
                    future.set_result(response.result())  # done: wraps the rows in a ResultSet
                else:
                    future.set_exception(error)
            except InvalidStateError:
                pass
            except Exception as failure:
                future.set_exception(failure)

        timeout_s = self._timeout if timeout is None else timeout
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        if isinstance(statement, str):
            statement = self._as_statement(statement)
        request = _Request(statement, parameters, deadline, done)
        request.future = future
        self._send(request)
        return future

    def execute(self, statement: Any, parameters: Any = None, timeout: float | None = None) -> Any:
        """Submit through the throttler and wait for the driver's result."""
        return self.execute_async(statement, parameters, timeout).result()

    def sync(self, timeout_s: float | None = None) -> bool:
        """Wait until every answer handed to the completion thread so far has been completed."""
        passed = threading.Event()
        self._send_marker(_Request(None, None, None, lambda _r, _e: passed.set()))
        return passed.wait(timeout_s)

    def _send_marker(self, marker: _Request) -> None:
        self._answers.put((marker, None))
        self._ensure_worker()

    def stats(self) -> ThrottlerStats:
        """The throttler's counters, and the driver answers ignored as duplicates."""
        return replace(self.throttler.stats(), duplicate_answers=self._duplicates)

    def close(self) -> None:
        """Refuse queued and future requests (in-flight ones finish in the driver)."""
        self.throttler.close()

    def _as_statement(self, statement: str) -> Any:
        from cassandra.query import SimpleStatement

        return SimpleStatement(statement, is_idempotent=self._idempotent)

    # -- on the caller's thread, the rate throttler's drain thread or the completion thread ----

    def _start(self, request: _Request) -> None:
        request.admitted = True
        if request.future is not None and not request.future.set_running_or_notify_cancel():
            self._answers.put((request, None))  # cancelled while queued: free the slot, send nothing
            return
        try:
            if request.deadline is None:
                response = self.session.execute_async(request.statement, request.parameters)
            else:
                left = request.deadline - time.monotonic()
                if left <= 0:
                    self._answers.put((request, timed_out_in_queue()))
                    return
                response = self.session.execute_async(request.statement, request.parameters, timeout=left)
        except Exception as error:  # refused before it left (no connection, session shut down)
            self._answers.put((request, error))
            return
        request.response = response
        response.add_callbacks(
            self._on_rows, self._on_error, callback_args=(request,), errback_args=(request,)
        )

    # -- on the driver's I/O thread: hand over and return -------------------------------------

    def _on_rows(self, _rows: Any, request: _Request) -> None:
        self._answers.put((request, None))

    def _on_error(self, error: BaseException, request: _Request) -> None:
        self._answers.put((request, error))

    # -- on the completion thread -------------------------------------------------------------

    def _complete(self) -> None:
        get, throttler, interval = self._answers.get, self.throttler, self._expiry_interval
        next_expiry = time.monotonic() + interval
        while True:
            try:
                request, error = get(timeout=interval)
            except queue.Empty:
                with self._worker_lock:
                    if throttler.idle and self._answers.empty():
                        self._worker = None  # closed and drained; a later submit starts another
                        return
                request = None
            now = time.monotonic()
            if now >= next_expiry:
                next_expiry = now + interval
                for reject in throttler.expire(now):
                    reject(timed_out_in_queue())
            if request is None:
                continue
            if request.answered:  # the driver called back twice for one request
                self._duplicates += 1
                continue
            request.answered = True
            if request.admitted:
                following = throttler.release()
                if following is not None:
                    following()
            try:
                request.on_done(request.response, error)
            except Exception:
                log.exception("a request's completion failed")
            _let_go(request)


def _let_go(request: _Request) -> None:
    """Break the reference cycles a completed request leaves, so that it is freed at once.

    The request holds the driver's future, whose callbacks hold the request; the future holds
    its timeout timer, whose callback is the future's own method, and the driver's timer queue
    keeps a cancelled timer until its time comes (the request timeout, seconds later). Left as
    they are, every write's ~45 objects outlive it by seconds and die only in the cyclic
    collector, whose passes over that heap stop every thread of the process.
    """
    response, request.response = request.response, None
    timer = getattr(response, "_timer", None)
    if timer is not None and timer.canceled:  # answered: the driver cancelled it, never to fire
        timer.callback = None
        response._timer = None


@cache
def _queue_timeout_class() -> type[Exception]:
    from cassandra import OperationTimedOut

    class TimedOutInQueue(OperationTimedOut):  # type: ignore[misc]
        """The request's timeout passed while it waited in the throttler queue: never sent."""

    return TimedOutInQueue


def timed_out_in_queue() -> Exception:
    """The driver's OperationTimedOut, for a request whose time ran out in the queue."""
    return _queue_timeout_class()("the request timed out in the throttler queue")
