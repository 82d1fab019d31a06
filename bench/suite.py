"""One bench run: warm up, interleave engine and baseline repetitions, measure memory, clean up."""

from __future__ import annotations

import os
import platform
import secrets
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from astrachaos.driver.session import Connection, connect
from astrachaos.driver.table import RunTable, drop_table, ensure_table
from astrachaos.run.runner import resolve_profile, target_table
from astrachaos.scenario import Scenario
from astrachaos.verify.reads import READ_AHEAD
from bench.memory import peak_rss
from bench.plan import BenchPlan, bench_scenario
from bench.report import BenchReport, Metric, ceiling_metric, info_metric, ratio_metric
from bench.scan import RawScan, raw_scan, raw_scan_like_engine, reverify
from bench.writes import BenchFailure, EngineRun, RawWrite, raw_write, run_engine

Say = Callable[[str], None]
WRITE_GOAL = 0.9
PROCESSES_GOAL = 1.3
VERIFY_GOAL = 0.9
READ_ROUNDS = 3  # raw scan and verification pairs per repetition (their medians kept)
RSS_CEILING_MB = 300.0
NOTES = (
    "writes: the raw baseline's bound values are built before its clock starts; the engine "
    "makes its records (payload, digest) inside its write phase, as it must",
    "writes: with the server as the bottleneck, wall-clock ratios hide client cost; "
    "`client CPU per record written` shows it (process CPU, every thread)",
    "verification: the engine's seconds include reading and joining its SQLite ledger and "
    "matching each partition against its writers' prints (a partition whose every record was "
    "acknowledged is requested as the bytes the node sends and decoded only if they do not "
    "match); the goal's baseline reads the same rows the same way with the raw "
    f"driver (same query and columns, page size and consistency level, tuple rows, {READ_AHEAD} "
    "partitions in flight, paged by callbacks), as the write goal's baseline writes at the same "
    "concurrency, so its ratio is the engine's own cost alone. The scan decodes every row, "
    "and reads no ledger (prints per partition, the acknowledged totals the ledger's writer "
    "kept) and joins nothing; it runs on the bench's warm session, while "
    "verification reads on a Cluster of its own (connected untimed). The goal's verification is "
    f"`astrachaos verify` of each run again, {READ_ROUNDS} times alternating with the scan (the "
    "medians of each repetition kept), so that both read the node in the same state; "
    "verification in the run starts the moment the writes end, while the node still works "
    "them off, and is shown beside it (a raw scan at "
    "that moment is slower by as much); the second baseline is a scan written by hand, one "
    "partition after another, the driver's default rows: concurrency alone beats it",
    "writes, 2 processes: the same writers spread over two writer processes (each its own "
    "Cluster), against the same single-process raw baseline; Cassandra runs on the same 2 cores, "
    "so the client can only take what the server leaves",
    "node CPU: the local Cassandra's own CPU (/proc/<pid>/stat) over each write, per record; it "
    "shares the 2 cores with the client, so it bounds what any client reaches; on a shared machine "
    "other clients' load on the node is counted too",
    "peak RSS: the child is forked from `bench.isolated`, not from the bench, whose own "
    "high-water mark Linux would otherwise carry into the child's ru_maxrss",
)


def run_suite(
    plan: BenchPlan, workdir: Path, command: str, say: Say, measure_rss: bool = True
) -> BenchReport:
    """Measure the three metrics; the bench table is dropped whatever happens."""
    began, started_at = time.monotonic(), datetime.now(UTC).isoformat(timespec="seconds")
    scenario = bench_scenario(plan, plan.records)
    profile = resolve_profile(scenario)
    table = target_table(scenario, profile)
    load_before, revision = os.getloadavg(), _engine_revision()  # before the code can change
    with connect(profile) as raw:
        try:
            ensure_table(raw.session, table, scenario.schema_.replication_factor, astra=False)
            engines, writes, scans, like_engine, two, again = _repetitions(plan, raw, workdir, say)
            metrics, notes = _ratio_metrics(engines, writes, scans, like_engine, again), list(NOTES)
            metrics.insert(
                1,
                ratio_metric(
                    "write throughput, 2 writer processes",
                    "writes/s",
                    [e.writes_per_s for e in two],
                    [w.writes_per_s for w in writes],
                    PROCESSES_GOAL,
                ),
            )
            metrics.extend(_node_cpu_metrics(engines, writes, two))
            metrics.extend(_collector_metrics(engines, writes))
            if measure_rss:
                try:
                    metrics.append(_memory(plan, workdir, say))
                except BenchFailure as failure:  # the ratios above are still worth printing
                    say(str(failure))
                    notes.append(f"peak RSS not measured: {failure}")
            environment = {**_environment(raw, load_before), **revision}
        finally:
            say(f"dropping {table.qualified}")
            drop_table(raw.session, table)
    return BenchReport(
        command=command,
        started_at=started_at,
        seconds=round(time.monotonic() - began, 1),
        plan=asdict(plan),
        metrics=metrics,
        environment=environment,
        notes=notes,
    )


def _repetitions(
    plan: BenchPlan, raw: Connection, workdir: Path, say: Say
) -> tuple[list[EngineRun], list[RawWrite], list[RawScan], list[RawScan], list[EngineRun], list[RawScan]]:
    scenario = bench_scenario(plan, plan.records)
    two_processes = bench_scenario(plan, plan.records, name="bench-careful-2p", processes=2)
    warmup = bench_scenario(plan, plan.warmup_records, name="bench-warmup")
    table = target_table(scenario, raw.profile)
    say(f"warm-up: {plan.warmup_records:,} records through each side")
    run_engine(warmup, workdir / "warmup")
    raw_write(raw.session, table, warmup, _raw_run_id("warmup"), plan.concurrency)
    engines: list[EngineRun] = []
    writes: list[RawWrite] = []
    scans: list[RawScan] = []
    like_engine: list[RawScan] = []
    two: list[EngineRun] = []
    again: list[RawScan] = []  # each engine run verified again, next to the raw scans
    order = ["engine", "raw", "two"]
    for rep in range(plan.repetitions):
        # Rotate who goes first, so a drift in the machine's load favours no side.
        sides = order[rep % 3 :] + order[: rep % 3]
        for side in sides:
            if side == "engine":
                engines.append(run_engine(scenario, workdir / f"engine-{rep}"))
            elif side == "two":
                two.append(run_engine(two_processes, workdir / f"two-{rep}"))
            else:
                writes.append(raw_write(raw.session, table, scenario, _raw_run_id(str(rep)),
                                        plan.concurrency))  # fmt: skip
        one, like, verified = _reads(raw, table, scenario, engines[-1], rep, plan.buckets)
        scans.append(one)
        like_engine.append(like)
        again.append(verified)
        for scanned in (scans[-1], like_engine[-1], again[-1]):
            if scanned.rows != engines[-1].rows_read:
                raise BenchFailure(f"a scan read {scanned.rows} rows, the engine {engines[-1].rows_read}")
        say(
            f"repetition {rep + 1}/{plan.repetitions}: writes/s engine "
            f"{engines[-1].writes_per_s:,.0f} raw {writes[-1].writes_per_s:,.0f} "
            f"2 processes {two[-1].writes_per_s:,.0f}; "
            f"verify rows/s engine {again[-1].rows_per_s:,.0f} "
            f"(in the run {engines[-1].verify_rows_per_s:,.0f}) "
            f"raw at the same concurrency {like_engine[-1].rows_per_s:,.0f} "
            f"(one partition at a time {scans[-1].rows_per_s:,.0f}); "
            "CPU us/record engine "
            f"{engines[-1].write_cpu_us_per_record:,.0f} raw {writes[-1].cpu_us_per_record:,.0f}"
        )
    return engines, writes, scans, like_engine, two, again


def _reads(
    raw: Connection, table: RunTable, scenario: Scenario, engine: EngineRun, rep: int, buckets: int
) -> tuple[RawScan, RawScan, RawScan]:
    """The engine run's rows read by hand, by the raw scan at the same concurrency and by
    verification again; the last two READ_ROUNDS times each, alternating, their medians kept.

    A read of 60,000 rows takes a quarter of a second: one pass of something else on the machine
    moves a single pair far, so each repetition takes the median of several pairs.
    """
    spec = scenario.verify
    assert engine.run_dir is not None
    like: list[RawScan] = []
    verified: list[RawScan] = []
    for round_ in range(READ_ROUNDS):
        for read in ("like", "again") if (rep + round_) % 2 == 0 else ("again", "like"):
            if read == "like":
                like.append(raw_scan_like_engine(raw.session, table, engine.run_id, buckets, spec.page_size,
                                                 spec.read_consistency, READ_AHEAD))  # fmt: skip
            else:
                verified.append(reverify(engine.run_dir))
    one = raw_scan(raw.session, table, engine.run_id, buckets, spec.page_size, spec.read_consistency)
    return one, _median_read(like), _median_read(verified)


def _median_read(reads: list[RawScan]) -> RawScan:
    return RawScan(reads[0].run_id, reads[0].rows, statistics.median(r.seconds for r in reads))


def _ratio_metrics(
    engines: list[EngineRun],
    writes: list[RawWrite],
    scans: list[RawScan],
    like_engine: list[RawScan],
    again: list[RawScan],
) -> list[Metric]:
    return [
        ratio_metric(
            "write throughput (careful, ledger on)",
            "writes/s",
            [e.writes_per_s for e in engines],
            [w.writes_per_s for w in writes],
            WRITE_GOAL,
        ),
        ratio_metric(
            "verification read rate (raw scan at the same concurrency)",
            "rows/s",
            [a.rows_per_s for a in again],
            [s.rows_per_s for s in like_engine],
            VERIFY_GOAL,
        ),
        info_metric(
            "verification in the run, right after its writes (same raw scan)",
            "rows/s",
            [e.verify_rows_per_s for e in engines],
            [s.rows_per_s for s in like_engine],
        ),
        info_metric(
            "verification vs a raw scan one partition at a time",
            "rows/s",
            [a.rows_per_s for a in again],
            [s.rows_per_s for s in scans],
        ),
        # With the server as the bottleneck, CPU shows the engine's own cost that wall time hides.
        info_metric(
            "client CPU per record written",
            "us",
            [e.write_cpu_us_per_record for e in engines],
            [w.cpu_us_per_record for w in writes],
        ),
    ]


def _memory(plan: BenchPlan, workdir: Path, say: Say) -> Metric:
    scenario = bench_scenario(plan, plan.rss_records, name="bench-rss")
    say(f"peak RSS: `astrachaos run` of {plan.rss_records:,} records in a child process")
    measured = peak_rss(scenario, workdir / "rss")
    if measured.exit_code != 0:
        tail = measured.log.read_text(errors="replace")[-500:]  # the work directory goes away
        tail += f" counts: {measured.counts}"
        raise BenchFailure(f"the {plan.rss_records:,}-record child run exited {measured.exit_code}: {tail}")
    say(f"peak RSS {measured.mb:,.1f} MB over {measured.seconds:,.0f} s")
    return ceiling_metric(f"peak RSS, {plan.rss_records:,}-record run", "MB", measured.mb, RSS_CEILING_MB)


def _raw_run_id(label: str) -> str:
    return f"bench-raw-{label}-{secrets.token_hex(3)}"


def _environment(raw: Connection, load_before: tuple[float, float, float]) -> dict[str, str]:
    import cassandra

    row: Any = raw.session.execute("SELECT release_version FROM system.local").one()
    return {
        "python": platform.python_version(),
        "cassandra_driver": cassandra.__version__,
        "cassandra": str(row.release_version),
        "protocol_version": str(raw.cluster.protocol_version),
        "consistency": raw.profile.driver.consistency,
        "cpus": str(os.cpu_count()),
        "loadavg_before": " ".join(f"{x:.2f}" for x in load_before),
        "loadavg_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _engine_revision() -> dict[str, str]:
    # Others commit to the engine all day: a number means little without the code it measured.
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "astrachaos"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {"git_head": "unknown"}
    return {"git_head": head, "engine_files_uncommitted": str(len(dirty))}


def _collector_metrics(engines: list[EngineRun], writes: list[RawWrite]) -> list[Metric]:
    """Time each side's process spent in Python's cyclic collector, whose passes stop every thread.

    The raw driver's results list keeps every future (and what it holds) alive until
    `execute_concurrent_with_args` returns, so its passes walk more and more of them.
    """
    if not all(w.gc_s > 0 for w in writes):  # a ratio needs a baseline that collected at all
        return []
    return [
        info_metric(
            "client seconds in the cyclic collector per write phase",
            "s",
            [e.gc_s for e in engines],
            [w.gc_s for w in writes],
        )
    ]


def _node_cpu_metrics(engines: list[EngineRun], writes: list[RawWrite], two: list[EngineRun]) -> list[Metric]:
    """The database node's CPU per record written, beside each side's (it shares the cores)."""
    raw = [w.node_cpu_us_per_record for w in writes]
    metrics = []
    for name, runs in (("1 process", engines), ("2 writer processes", two)):
        node = [e.node_cpu_us_per_record for e in runs]
        known = [x for x in node if x is not None], [x for x in raw if x is not None]
        if len(known[0]) == len(node) and len(known[1]) == len(raw):  # else: no local node to read
            metrics.append(info_metric(f"node CPU per record written, {name}", "us", *known))
    return metrics
