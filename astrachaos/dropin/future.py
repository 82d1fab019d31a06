"""A ResponseFuture look-alike whose answer astrachaos decides: the driver's, or an injected one.

Code written for the driver's `ResponseFuture` keeps working: `result()`, `add_callback`,
`add_errback`, `add_callbacks`, `clear_callbacks`, and `ResultSet` / `execute_concurrent` on top.
Attributes it does not define (paging state, trace, warnings, ...) come from the real future when
the statement was really sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_Callback = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class ChaosFuture:
    """The answer to one write, delivered once to `result()` and to every callback."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._rows: Any = None
        self._error: BaseException | None = None
        self._callbacks: list[_Callback] = []
        self._errbacks: list[_Callback] = []
        self.real: Any = None  # the driver's ResponseFuture once the statement is sent

    def complete(self, rows: Any, error: BaseException | None) -> None:
        """Settle the future (the first call wins: an errback may be called twice by the driver)."""
        with self._lock:
            if self._done.is_set():
                return
            self._rows, self._error = rows, error
            self._done.set()
            callbacks = list(self._errbacks if error is not None else self._callbacks)
        for fn, args, kwargs in callbacks:
            _call_quietly(fn, error if error is not None else rows, args, kwargs)

    def result(self) -> Any:
        """The rows as a driver `ResultSet`, or the driver's exception (real or injected)."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        from cassandra.cluster import ResultSet

        return ResultSet(self, self._rows)

    def add_callback(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> ChaosFuture:
        """Call `fn(rows, *args, **kwargs)` on success (now, if already done)."""
        self._add(self._callbacks, fn, args, kwargs, on_error=False)
        return self

    def add_errback(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> ChaosFuture:
        """Call `fn(exception, *args, **kwargs)` on failure (now, if already failed)."""
        self._add(self._errbacks, fn, args, kwargs, on_error=True)
        return self

    def add_callbacks(
        self,
        callback: Callable[..., Any],
        errback: Callable[..., Any],
        callback_args: tuple[Any, ...] = (),
        callback_kwargs: dict[str, Any] | None = None,
        errback_args: tuple[Any, ...] = (),
        errback_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Both at once, as the driver's `add_callbacks`."""
        self.add_callback(callback, *callback_args, **(callback_kwargs or {}))
        self.add_errback(errback, *errback_args, **(errback_kwargs or {}))

    def clear_callbacks(self) -> None:
        """Forget every callback and errback not yet called."""
        with self._lock:
            self._callbacks, self._errbacks = [], []

    def done(self) -> bool:
        """Whether the answer is known."""
        return self._done.is_set()

    @property
    def has_more_pages(self) -> bool:
        """Writes have one page; a real read-back through an LWT answer may have more."""
        return bool(self.real is not None and self.real.has_more_pages)

    @property
    def _col_names(self) -> Any:
        return None if self.real is None else self.real._col_names

    @property
    def _col_types(self) -> Any:
        return None if self.real is None else self.real._col_types

    def __getattr__(self, name: str) -> Any:
        real = self.__dict__.get("real")
        if real is None:
            raise AttributeError(name)
        return getattr(real, name)

    def _add(
        self,
        into: list[_Callback],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        on_error: bool,
    ) -> None:
        with self._lock:
            into.append((fn, args, kwargs))
            if not self._done.is_set():
                return
            matches = (self._error is not None) == on_error
            value = self._error if on_error else self._rows
        if matches:
            _call_quietly(fn, value, args, kwargs)


def _call_quietly(fn: Callable[..., Any], value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """As the driver does: an exception raised by a callback is ignored (and logged)."""
    try:
        fn(value, *args, **kwargs)
    except Exception:
        import logging

        logging.getLogger(__name__).exception("callback %r raised", fn)
