"""Two-way comparison of whole tables, token range by token range, in parallel, resumable.

Each range is diffed by `rangediff.diff_range`, run by an engine (threads of this process, local
processes, or Spark tasks) whose outcomes land in one checkpoint and one result. Each range is
read from both tables with `token(pk) > ? AND token(pk) <= ?` (the ring's first
range uses `>=` so the minimum token is covered) and merged in (token, primary key) order. Every
key found different is then re-read by key on both sides with WRITETIME of each compared column:
what is equal by then is dropped, what involves a write newer than scan start − grace is
`in_flight`, the rest is reported. Memory: one token's rows per worker, plus the findings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astrachaos.errors import Interrupted, UsageProblem
from astrachaos.reconcile.checkpoint import CHECKPOINT_FILE, Checkpoint
from astrachaos.reconcile.engines.interface import Engine, EngineContext
from astrachaos.reconcile.engines.threads import Threads
from astrachaos.reconcile.portable import PortableProfile
from astrachaos.reconcile.rangediff import RangeJob, RangeOutcome, SideSpec
from astrachaos.reconcile.result import (
    ColumnDifference,
    InFlight,
    Mode,
    ReconcileResult,
    RowDifference,
)
from astrachaos.reconcile.schema import Column, JsonValue, TableSchema
from astrachaos.reconcile.tokens import TokenRange, split_ring

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (ranges done, ranges in all)


@dataclass(frozen=True)
class Side:
    """One table to compare, reached through an open session; `label` is PROFILE:KS.TABLE.

    `profile` lets other processes open their own session to the same database; `secret_env`
    carries the profile's secrets to them (see `portable.py`). Without a profile, only the
    in-process engine can read the table.
    """

    label: str
    session: Any
    schema: TableSchema
    profile: PortableProfile | None = None
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def portable(self) -> PortableProfile:
        """The profile workers use; a stand-in naming the label when the side has none."""
        return self.profile or PortableProfile(f"unbound {self.label}", "{}")


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
    max_rows_per_s: float | None = None  # per worker process (or Spark task slot)


def compare_tables(
    source: Side,
    target: Side,
    options: TableOptions,
    out: Path,
    progress: Progress | None = None,
    engine: Engine | None = None,
) -> ReconcileResult:
    """Compare every row of `source` and `target` with `engine` (threads here by default);
    checkpoint each range into `out`."""
    columns = _compared_columns(source.schema, target.schema, options.columns)
    tolerance_us = None if options.writetime_tolerance_ms is None else options.writetime_tolerance_ms * 1000
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
    job = RangeJob(
        source=SideSpec(source.label, source.portable, source.schema),
        target=SideSpec(target.label, target.portable, target.schema),
        columns=columns,
        page_size=options.page_size,
        tolerance_us=tolerance_us,
        fresh_after_us=int((time.time() - options.grace_s) * 1_000_000),
        recheck_concurrency=options.recheck_concurrency,
        max_rows_per_s=options.max_rows_per_s,
    )
    context = EngineContext(
        sessions={source.portable: source.session, target.portable: target.session},
        secret_env={**source.secret_env, **target.secret_env},
    )
    done = {r: checkpoint.completed[r] for r in ranges if r in checkpoint.completed}
    failed: list[TokenRange] = []
    began = time.monotonic()
    if progress:
        progress(len(done), len(ranges))

    recording = threading.Lock()  # an engine's workers record while the main thread may stop
    stopped = threading.Event()

    def record(outcome: RangeOutcome) -> None:
        token_range = outcome.token_range
        with recording:
            if stopped.is_set():  # after the interrupt was counted: it runs again on resume
                return
            if outcome.findings is None:
                log.warning("token range %s not read: %s", token_range, outcome.error)
                failed.append(token_range)
            elif token_range not in done:  # an engine that ran a range twice still reports it once
                checkpoint.record(token_range, outcome.findings)
                done[token_range] = outcome.findings
        if progress:
            progress(len(done) + len(failed), len(ranges))

    try:
        todo = [r for r in ranges if r not in done]
        (engine or Threads(options.concurrency)).run(job, todo, record, context)
    except KeyboardInterrupt:
        # No range is recorded after this (a worker still finishing one would otherwise add it to
        # the file after the message was made). The count is the file's: the interrupt may have
        # landed in `record` between writing a range and noting it in `done`.
        with recording:
            stopped.set()
        checkpointed = checkpoint.ranges_in_file()
        raise Interrupted(
            f"interrupted: {checkpointed} of {len(ranges)} token ranges compared and "
            f"checkpointed in {checkpoint.path}",
            hint="run the same command with --resume to continue from there",
        ) from None
    finally:
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
