"""Two-way comparison of whole tables, token range by token range, in parallel, resumable.

Each range is read from both tables with `token(pk) > ? AND token(pk) <= ?` (the ring's first
range uses `>=` so the minimum token is covered) and merged in (token, primary key) order. Every
key found different is then re-read by key on both sides with WRITETIME of each compared column:
what is equal by then is dropped, what involves a write newer than scan start − grace is
`in_flight`, the rest is reported. Memory: one token's rows per worker, plus the findings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astrachaos.errors import Interrupted, UsageProblem
from astrachaos.reconcile.checkpoint import CHECKPOINT_FILE, Checkpoint
from astrachaos.reconcile.merge import Finding, MergeCounts, Mismatch, Row, merge, same_value
from astrachaos.reconcile.result import (
    ColumnDifference,
    InFlight,
    Mode,
    ReconcileResult,
    RowDifference,
)
from astrachaos.reconcile.schema import Column, JsonValue, TableSchema, encode
from astrachaos.reconcile.tokens import TokenRange, split_ring

log = logging.getLogger(__name__)
_ATTEMPTS = 3
_STOP_GRACE_S = 3.0  # on an interrupt, how long ranges already being read may take to finish


class _Stopped(Exception):
    """A range scan gave up because the comparison is stopping."""


class _StoppedRange(dict[str, Any]):
    """The result of a range abandoned on stop: neither compared nor failed (it runs on resume)."""
Progress = Callable[[int, int], None]  # (ranges done, ranges in all)


@dataclass(frozen=True)
class Side:
    """One table to compare, reached through an open session; `label` is PROFILE:KS.TABLE."""

    label: str
    session: Any
    schema: TableSchema


@dataclass(frozen=True)
class TableOptions:
    """How to compare: splits, parallelism, columns, writetime tolerance, grace, checkpointing."""

    splits: int = 64
    concurrency: int = 8
    columns: Sequence[str] | None = None
    writetime_tolerance_ms: int | None = None
    grace_s: float = 0.0
    page_size: int = 5000
    resume: bool = False
    recheck_concurrency: int = 32


class _Reader:
    """Prepared range scan and key lookup of one side; rows are plain tuples."""

    def __init__(self, side: Side, columns: tuple[Column, ...], with_writetime: bool) -> None:
        from cassandra.cluster import EXEC_PROFILE_DEFAULT
        from cassandra.query import tuple_factory

        schema = side.schema
        self.session = side.session
        self.profile = side.session.execution_profile_clone_update(
            EXEC_PROFILE_DEFAULT, row_factory=tuple_factory
        )
        pk = ", ".join(c.quoted for c in schema.partition_key)
        keys = [c.quoted for c in schema.primary_key]
        values = [c.quoted for c in columns]
        times = [f"WRITETIME({c.quoted})" for c in columns]
        scanned = ", ".join([f"token({pk})", *keys, *values, *(times if with_writetime else [])])
        base = f"SELECT {scanned} FROM {schema.qualified} WHERE token({pk})"
        self.first = side.session.prepare(f"{base} >= ? AND token({pk}) <= ?")
        self.rest = side.session.prepare(f"{base} > ? AND token({pk}) <= ?")
        where = " AND ".join(f"{k} = ?" for k in keys)
        fetched = ", ".join([*keys, *values, *times])
        self.by_key = side.session.prepare(f"SELECT {fetched} FROM {schema.qualified} WHERE {where}")

    def scan(self, token_range: TokenRange, page_size: int) -> Iterator[Row]:
        statement = self.first if token_range.includes_start else self.rest
        bound = statement.bind((token_range.start, token_range.end))
        bound.fetch_size = page_size
        yield from self.session.execute(bound, execution_profile=self.profile)

    def lookup(self, keys: Sequence[Row], concurrency: int) -> list[Row | None]:
        from cassandra.concurrent import execute_concurrent_with_args

        results = execute_concurrent_with_args(
            self.session, self.by_key, keys, concurrency=concurrency, raise_on_first_error=True,
            execution_profile=self.profile,
        )  # fmt: skip
        return [next(iter(result.result_or_exc), None) for result in results]


def compare_tables(
    source: Side,
    target: Side,
    options: TableOptions,
    out: Path,
    progress: Progress | None = None,
) -> ReconcileResult:
    """Compare every row of `source` and `target`; checkpoint each range into `out`."""
    columns = _compared_columns(source.schema, target.schema, options.columns)
    tolerance_us = None if options.writetime_tolerance_ms is None else options.writetime_tolerance_ms * 1000
    readers = (
        _Reader(source, columns, tolerance_us is not None),
        _Reader(target, columns, tolerance_us is not None),
    )
    ranges = split_ring(options.splits)
    header: dict[str, JsonValue] = {
        "source": source.label,
        "target": target.label,
        "splits": options.splits,
        "columns": [c.name for c in columns],
        "writetime_tolerance_ms": options.writetime_tolerance_ms,
    }
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = Checkpoint(out / CHECKPOINT_FILE, header, options.resume)
    scan = _RangeScan(source.schema, columns, readers, options, tolerance_us, time.time())
    done = {r: checkpoint.completed[r] for r in ranges if r in checkpoint.completed}
    failed: list[TokenRange] = []
    began = time.monotonic()
    if progress:
        progress(len(done), len(ranges))
    pool = ThreadPoolExecutor(max_workers=options.concurrency)
    futures = {pool.submit(scan.run, r): r for r in ranges if r not in done}

    def keep(future: Future[dict[str, Any] | None]) -> None:
        token_range = futures[future]
        if token_range in done or token_range in failed:  # already kept before the interrupt
            return
        findings = future.result()
        if findings is None:
            failed.append(token_range)
        else:
            checkpoint.record(token_range, findings)
            done[token_range] = findings
        if progress:
            progress(len(done) + len(failed), len(ranges))

    try:
        for future in as_completed(futures):
            keep(future)
    except KeyboardInterrupt:
        # Queued ranges never start; those being read get a moment to finish and are kept.
        for future in futures:
            future.cancel()
        finished, _ = wait_for([f for f in futures if not f.cancelled()], timeout=_STOP_GRACE_S)
        scan.stop.set()
        for future in finished:
            if future.exception() is None and not isinstance(future.result(), _StoppedRange):
                keep(future)
        raise Interrupted(
            f"interrupted: {len(done)} of {len(ranges)} token ranges compared and "
            f"checkpointed in {checkpoint.path}",
            hint="run the same command with --resume to continue from there",
        ) from None
    finally:
        scan.stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        checkpoint.close()
    return _result(source, target, options, header, ranges, done, failed, time.monotonic() - began,
                   len(checkpoint.completed))  # fmt: skip


def _compared_columns(
    source: TableSchema, target: TableSchema, names: Sequence[str] | None
) -> tuple[Column, ...]:
    """The compared columns; both tables must share primary key and compared columns' types."""

    def shape(columns: tuple[Column, ...]) -> list[tuple[str, str]]:
        return [(c.name, c.cql_type) for c in columns]

    for part in ("partition_key", "clustering"):
        if shape(getattr(source, part)) != shape(getattr(target, part)):
            raise UsageProblem(
                f"the tables' {part.replace('_', ' ')}s differ: {shape(getattr(source, part))} vs "
                f"{shape(getattr(target, part))}; reconcile compares tables of the same primary key"
            )
    chosen = source.select_values(names)
    for column in chosen:
        other = target.column(column.name)
        if other.cql_type != column.cql_type:
            raise UsageProblem(
                f"column {column.name} is {column.cql_type} in the source and {other.cql_type} in "
                "the target; leave it out with --columns"
            )
    if names is None:
        extra = {c.name for c in target.values} - {c.name for c in chosen}
        if extra:
            log.info("columns only in the target are not compared: %s", sorted(extra))
    return chosen


class _RangeScan:
    """Reads, merges and re-checks one token range; returns its findings as JSON-safe data."""

    def __init__(
        self,
        schema: TableSchema,
        columns: tuple[Column, ...],
        readers: tuple[_Reader, _Reader],
        options: TableOptions,
        tolerance_us: int | None,
        started_s: float,
    ) -> None:
        self.keys = schema.primary_key
        self.columns = columns
        self.readers = readers
        self.options = options
        self.tolerance_us = tolerance_us
        self.key_width = 1 + len(self.keys)
        self.fresh_after_us = int((started_s - options.grace_s) * 1_000_000)
        self.stop = threading.Event()

    def run(self, token_range: TokenRange) -> dict[str, Any] | None:
        """The range's findings, or None when it failed `_ATTEMPTS` times."""
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return self._once(token_range)
            except _Stopped:
                return _StoppedRange()
            except Exception as error:  # timeouts, unavailable: the whole range is read again
                log.warning("range %s failed (attempt %s): %s", token_range, attempt, error)
                if attempt < _ATTEMPTS:
                    time.sleep(0.5 * attempt)
        return None

    def _once(self, token_range: TokenRange) -> dict[str, Any]:
        counts = MergeCounts()
        source, target = self.readers
        page = self.options.page_size
        mismatches = list(
            merge(
                self._until_stopped(source.scan(token_range, page)),
                self._until_stopped(target.scan(token_range, page)),
                self.key_width,
                counts,
            )
        )
        findings: dict[str, Any] = {
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

    def _until_stopped(self, rows: Iterable[Row]) -> Iterator[Row]:
        for row in rows:
            if self.stop.is_set():
                raise _Stopped
            yield row

    def _recheck(self, mismatches: list[Mismatch], findings: dict[str, Any]) -> None:
        keys = [m.key for m in mismatches]
        concurrency = self.options.recheck_concurrency
        now_source = self.readers[0].lookup(keys, concurrency)
        now_target = self.readers[1].lookup(keys, concurrency)
        width = len(self.keys)
        n = len(self.columns)
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
            if newest is not None and newest >= self.fresh_after_us:
                findings["in_flight"].append(InFlight(encoded, kind.value, newest).to_json())
            else:
                findings[kind.value].append(entry)

    def _column_differences(self, s: Row, t: Row) -> tuple[ColumnDifference, ...]:
        n = len(self.columns)
        diffs = []
        for i, column in enumerate(self.columns):
            sv, tv, sw, tw = s[i], t[i], s[n + i], t[n + i]
            if same_value(sv, tv) and (self.tolerance_us is None or _within(sw, tw, self.tolerance_us)):
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


def _result(
    source: Side,
    target: Side,
    options: TableOptions,
    header: dict[str, JsonValue],
    ranges: tuple[TokenRange, ...],
    done: dict[TokenRange, dict[str, Any]],
    failed: list[TokenRange],
    seconds: float,
    resumed: int,
) -> ReconcileResult:
    ordered = [done[r] for r in ranges if r in done]

    def total(name: str) -> int:
        return sum(int(f[name]) for f in ordered)

    def every(name: str) -> list[Any]:
        return [item for f in ordered for item in f[name]]

    differing = tuple(
        RowDifference(d["key"], tuple(ColumnDifference(name, **v) for name, v in d["columns"].items()))
        for d in every("differing")
    )
    in_flight = tuple(InFlight(f["key"], f["kind"], f["newest_writetime"]) for f in every("in_flight"))
    missing_in_target = tuple(every("missing_in_target"))
    missing_in_source = tuple(every("missing_in_source"))
    counts = {
        "source_rows": total("source_rows"),
        "target_rows": total("target_rows"),
        "equal": total("equal"),
        "missing_in_target": len(missing_in_target),
        "missing_in_source": len(missing_in_source),
        "differing": len(differing),
        "in_flight": len(in_flight),
        "rechecked_equal": total("rechecked_equal"),
        "ranges": len(ranges),
        "ranges_resumed": resumed,
        "ranges_failed": len(failed),
    }
    settings = {**header, "concurrency": options.concurrency, "grace_s": options.grace_s,
                "page_size": options.page_size, "seconds": round(seconds, 3)}  # fmt: skip
    notes = []
    if not options.resume and resumed:
        notes.append(f"{resumed} ranges were taken from the checkpoint")
    return ReconcileResult(
        mode=Mode.TABLES,
        source=source.label,
        target=target.label,
        counts=counts,
        missing_in_target=missing_in_target,
        missing_in_source=missing_in_source,
        differing=differing,
        in_flight=in_flight,
        failed_ranges=tuple(sorted(failed)),
        settings=settings,
        notes=tuple(notes),
    )
