"""One token range of two tables, read, merged and re-checked: the unit of work of every engine.

`diff_range(job, start, end)` is a module-level function of plain data, so the in-process engine
calls it in threads, the local engine in spawned processes and the Spark engine in executors'
Python workers, and all three return the same `RangeOutcome`. Each process opens its own driver
Cluster on first use (after the fork or spawn, as the driver requires) and keeps it, with its
prepared statements, for the ranges that follow; the in-process engine lends its open sessions.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from astrachaos.reconcile.merge import Finding, MergeCounts, Mismatch, Row, merge, same_value
from astrachaos.reconcile.portable import PortableProfile
from astrachaos.reconcile.result import ColumnDifference, InFlight, RowDifference
from astrachaos.reconcile.schema import Column, TableSchema, encode
from astrachaos.reconcile.tokens import TokenRange

log = logging.getLogger(__name__)
ATTEMPTS = 3
Findings = dict[str, Any]  # JSON-safe: counts and lists, as a checkpoint line stores them


@dataclass(frozen=True)
class SideSpec:
    """One table as a worker reaches it: label, portable profile and schema."""

    label: str
    profile: PortableProfile
    schema: TableSchema


@dataclass(frozen=True)
class RangeJob:
    """Everything a range diff needs besides its bounds; the same for every range of a run."""

    source: SideSpec
    target: SideSpec
    columns: tuple[Column, ...]
    page_size: int
    tolerance_us: int | None  # compare writetimes too, within this many microseconds
    fresh_after_us: int  # scan start − grace: newer writes make a difference in_flight
    recheck_concurrency: int = 32
    max_rows_per_s: float | None = None  # per worker process, both tables' rows together


@dataclass(frozen=True)
class RangeOutcome:
    """A range's findings, or None with the last error when it failed `ATTEMPTS` times."""

    start: int
    end: int
    findings: Findings | None
    error: str | None = None

    @property
    def token_range(self) -> TokenRange:
        """The range diffed."""
        return TokenRange(self.start, self.end)


def diff_range(job: RangeJob, start: int, end: int) -> RangeOutcome:
    """Diff tokens (start, end] of both tables (ATTEMPTS tries; the whole range is read again)."""
    token_range = TokenRange(start, end)
    error = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return RangeOutcome(start, end, _RangeScan(job).once(token_range))
        except RangeStopped:
            return RangeOutcome(start, end, None, STOPPED)
        except Exception as failure:  # timeouts, unavailable, a lost connection
            error = f"{type(failure).__name__}: {failure}"
            log.warning("range %s failed (attempt %s): %s", token_range, attempt, error)
            if attempt < ATTEMPTS:
                time.sleep(0.5 * attempt)
    return RangeOutcome(start, end, None, error)


class RangeStopped(Exception):
    """A range scan gave up because this process is stopping (an interrupt): it runs on resume."""


STOPPED = "stopped"  # the error of an outcome abandoned on stop: neither compared nor failed
_STOP = threading.Event()


def stop_scans() -> None:
    """Make every range scan of this process give up at its next row (on an interrupt)."""
    _STOP.set()


def allow_scans() -> None:
    """Let range scans run again (a new comparison in the same process)."""
    _STOP.clear()


@contextmanager
def lent_sessions(sessions: Mapping[PortableProfile, Any]) -> Iterator[None]:
    """Let this process's range diffs use open sessions (the in-process engine), then forget them."""
    with _LOCK:
        _SESSIONS.update(sessions)
    try:
        yield
    finally:
        with _LOCK:
            lent = {id(s) for s in sessions.values()}
            for profile in sessions:
                _SESSIONS.pop(profile, None)
            for key in [k for k in _READERS if id(k[0]) in lent]:
                del _READERS[key]


def close_sessions() -> None:
    """Shut down the Clusters this process opened (lent sessions stay with their owner)."""
    with _LOCK:
        for connection in _OPENED.values():
            connection.close()
        for profile in _OPENED:
            _SESSIONS.pop(profile, None)
        _OPENED.clear()
        _READERS.clear()


_LOCK = threading.Lock()
_SESSIONS: dict[PortableProfile, Any] = {}
_OPENED: dict[PortableProfile, Any] = {}  # Connection objects this process created
_READERS: dict[tuple[Any, ...], _Reader] = {}
_LIMITERS: dict[float, _RowRate] = {}
atexit.register(close_sessions)


def _session(profile: PortableProfile) -> Any:
    with _LOCK:
        if profile not in _SESSIONS:
            from astrachaos.driver.session import connect

            connection = connect(profile.load())
            _OPENED[profile] = connection
            _SESSIONS[profile] = connection.session
        return _SESSIONS[profile]


def _reader(side: SideSpec, columns: tuple[Column, ...], with_writetime: bool) -> _Reader:
    session = _session(side.profile)
    key = (session, side.schema, columns, with_writetime)
    with _LOCK:
        if key not in _READERS:
            _READERS[key] = _Reader(session, side.schema, columns, with_writetime)
        return _READERS[key]


def _limiter(rate: float | None) -> _RowRate | None:
    if rate is None:
        return None
    with _LOCK:
        return _LIMITERS.setdefault(rate, _RowRate(rate))


class _RowRate:
    """At most `rate` rows per second over the process, shared by its threads (a token bucket)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.lock = threading.Lock()
        self.next_free = time.monotonic()

    def take(self, rows: int) -> None:
        with self.lock:
            now = time.monotonic()
            self.next_free = max(self.next_free, now - 1.0) + rows / self.rate
            wait = self.next_free - now
        if wait > 0:
            time.sleep(wait)


class _Reader:
    """Prepared range scan and key lookup of one table; rows are plain tuples."""

    def __init__(
        self, session: Any, schema: TableSchema, columns: tuple[Column, ...], with_writetime: bool
    ) -> None:
        from cassandra.cluster import EXEC_PROFILE_DEFAULT
        from cassandra.query import tuple_factory

        self.session = session
        self.profile = session.execution_profile_clone_update(EXEC_PROFILE_DEFAULT, row_factory=tuple_factory)
        pk = ", ".join(c.quoted for c in schema.partition_key)
        keys = [c.quoted for c in schema.primary_key]
        values = [c.quoted for c in columns]
        times = [f"WRITETIME({c.quoted})" for c in columns]
        scanned = ", ".join([f"token({pk})", *keys, *values, *(times if with_writetime else [])])
        base = f"SELECT {scanned} FROM {schema.qualified} WHERE token({pk})"
        self.first = session.prepare(f"{base} >= ? AND token({pk}) <= ?")
        self.rest = session.prepare(f"{base} > ? AND token({pk}) <= ?")
        where = " AND ".join(f"{k} = ?" for k in keys)
        fetched = ", ".join([*keys, *values, *times])
        self.by_key = session.prepare(f"SELECT {fetched} FROM {schema.qualified} WHERE {where}")

    def scan(self, token_range: TokenRange, page_size: int, limiter: _RowRate | None) -> Iterator[Row]:
        statement = self.first if token_range.includes_start else self.rest
        bound = statement.bind((token_range.start, token_range.end))
        bound.fetch_size = page_size
        rows = self.session.execute(bound, execution_profile=self.profile)
        step = max(1, min(page_size, int(limiter.rate) // 10 or 1)) if limiter else 0  # smooth sleeps
        for count, row in enumerate(rows, 1):
            if _STOP.is_set():
                raise RangeStopped
            if limiter is not None and count % step == 0:
                limiter.take(step)
            yield row

    def lookup(self, keys: Sequence[Row], concurrency: int) -> list[Row | None]:
        from cassandra.concurrent import execute_concurrent_with_args

        results = execute_concurrent_with_args(
            self.session, self.by_key, keys, concurrency=concurrency, raise_on_first_error=True,
            execution_profile=self.profile,
        )  # fmt: skip
        return [next(iter(result.result_or_exc), None) for result in results]


class _RangeScan:
    """Reads, merges and re-checks one token range; returns its findings as JSON-safe data."""

    def __init__(self, job: RangeJob) -> None:
        with_writetime = job.tolerance_us is not None
        self.job = job
        self.keys = job.source.schema.primary_key
        self.key_width = 1 + len(self.keys)
        self.readers = (
            _reader(job.source, job.columns, with_writetime),
            _reader(job.target, job.columns, with_writetime),
        )

    def once(self, token_range: TokenRange) -> Findings:
        counts = MergeCounts()
        source, target = self.readers
        page = self.job.page_size
        limiter = _limiter(self.job.max_rows_per_s)
        mismatches = list(
            merge(
                source.scan(token_range, page, limiter),
                target.scan(token_range, page, limiter),
                self.key_width,
                counts,
            )
        )
        findings: Findings = {
            "source_rows": counts.source_rows,
            "target_rows": counts.target_rows,
            "equal": counts.equal,
            "rechecked_equal": 0,
            "missing_in_target": [],
            "missing_in_source": [],
            "differing": [],
            "in_flight": [],
        }
        if mismatches:
            self._recheck(mismatches, findings)
        return findings

    def _recheck(self, mismatches: list[Mismatch], findings: Findings) -> None:
        keys = [m.key for m in mismatches]
        concurrency = self.job.recheck_concurrency
        now_source = self.readers[0].lookup(keys, concurrency)
        now_target = self.readers[1].lookup(keys, concurrency)
        width = len(self.keys)
        n = len(self.job.columns)
        for key, s, t in zip(keys, now_source, now_target, strict=True):
            encoded = {c.name: encode(v) for c, v in zip(self.keys, key, strict=True)}
            if s is None and t is None:
                findings["rechecked_equal"] += 1
                continue
            if s is None or t is None:
                kind = Finding.MISSING_IN_SOURCE if s is None else Finding.MISSING_IN_TARGET
                present = t if s is None else s
                assert present is not None
                newest = _newest(present[width + n :])
                entry: Any = encoded
            else:
                diffs = self._column_differences(s[width:], t[width:])
                if not diffs:
                    findings["rechecked_equal"] += 1
                    continue
                kind = Finding.DIFFERING
                newest = _newest(s[width + n :] + t[width + n :])
                entry = RowDifference(encoded, diffs).to_json()
            if newest is not None and newest >= self.job.fresh_after_us:
                findings["in_flight"].append(InFlight(encoded, kind.value, newest).to_json())
            else:
                findings[kind.value].append(entry)

    def _column_differences(self, s: Row, t: Row) -> tuple[ColumnDifference, ...]:
        n = len(self.job.columns)
        tolerance = self.job.tolerance_us
        diffs = []
        for i, column in enumerate(self.job.columns):
            sv, tv, sw, tw = s[i], t[i], s[n + i], t[n + i]
            if same_value(sv, tv) and (tolerance is None or _within(sw, tw, tolerance)):
                continue
            diffs.append(ColumnDifference(column.name, encode(sv), encode(tv), encode(sw), encode(tw)))
        return tuple(diffs)


def _flat(times: Any) -> list[int]:
    if times is None:
        return []
    if isinstance(times, int):
        return [times]
    return [t for t in times if t is not None]  # a non-frozen collection: one per element


def _newest(times: Row) -> int | None:
    flat = [t for value in times for t in _flat(value)]
    return max(flat) if flat else None


def _within(a: Any, b: Any, tolerance_us: int) -> bool:
    """Writetimes within tolerance: a collection compares its newest element's writetime."""
    fa, fb = _flat(a), _flat(b)
    if not fa or not fb:
        return not fa and not fb
    return abs(max(fa) - max(fb)) <= tolerance_us
