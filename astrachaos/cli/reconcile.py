"""`astrachaos reconcile`: a run's ledger, a key file or a second table against a table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from astrachaos.errors import ExitCode, UsageProblem

if TYPE_CHECKING:
    from astrachaos.reconcile.engines import Engine
    from astrachaos.reconcile.keyfile import KeySpec
    from astrachaos.reconcile.result import ReconcileResult
    from astrachaos.reconcile.tables import Progress, TableOptions

_SHOWN = 10  # differences listed on the console; all are in result.json


def register(app: typer.Typer) -> None:
    """Add `reconcile` to the root app."""
    app.command("reconcile")(reconcile)


def reconcile(
    out: Annotated[Path, typer.Option(help="Directory for result.json (and checkpoint, CSV, plan).")],
    profile: Annotated[str, typer.Option(help="Profile of tables named without PROFILE:.")] = "local",
    run: Annotated[Path | None, typer.Option(help="A run directory: its ledger against its table.")] = None,
    expected: Annotated[Path | None, typer.Option(help="Expected keys: CSV, JSON lines or a log.")] = None,
    table: Annotated[str | None, typer.Option(help="[PROFILE:]KS.TABLE holding the expected keys.")] = None,
    key: Annotated[str | None, typer.Option(help="Key columns COL[,COL...] the file's keys fill.")] = None,
    key_path: Annotated[str | None, typer.Option(help="JSON lines: dotted path to the key(s).")] = None,
    key_regex: Annotated[
        str | None, typer.Option(help="Any text: regex with named groups = columns.")
    ] = None,
    match: Annotated[list[str] | None, typer.Option(help="JSON lines: keep lines with FIELD=VALUE.")] = None,
    where: Annotated[list[str] | None, typer.Option(help="Fixed key column COL=VALUE (e.g. run_id).")] = None,
    lookup: Annotated[
        str, typer.Option(help="partition (IN on clustering) or key (one query each).")
    ] = "partition",
    source: Annotated[str | None, typer.Option(help="[PROFILE:]KS.TABLE, the reference side.")] = None,
    target: Annotated[str | None, typer.Option(help="[PROFILE:]KS.TABLE compared with the source.")] = None,
    splits: Annotated[int, typer.Option(min=1, help="Token ranges the ring is split into.")] = 64,
    concurrency: Annotated[int, typer.Option(min=1, help="Ranges (or key queries) read at once.")] = 8,
    columns: Annotated[str | None, typer.Option(help="Compare only these columns (COL,COL).")] = None,
    writetime_tolerance_ms: Annotated[
        int | None,
        typer.Option(
            help="Also compare writetimes: equal values whose writetimes differ by more are reported."
        ),
    ] = None,
    grace_s: Annotated[
        float, typer.Option(help="Differences with a write newer than scan start − this are in_flight.")
    ] = 0.0,
    page_size: Annotated[int, typer.Option(min=1, help="Rows per page.")] = 5000,
    resume: Annotated[bool, typer.Option(help="Skip ranges already in OUT/checkpoint.jsonl.")] = False,
    engine: Annotated[
        str, typer.Option(help="Where ranges are diffed: local (this machine) or spark (Spark tasks).")
    ] = "local",
    workers: Annotated[
        int, typer.Option(min=1, help="--engine local: processes, each reading --concurrency ranges.")
    ] = 1,
    spark_master: Annotated[
        str | None, typer.Option(help="--engine spark: master URL (local[4], spark://H:7077, yarn).")
    ] = None,
    spark_conf: Annotated[
        list[str] | None, typer.Option(help="--engine spark: a Spark setting KEY=VALUE (repeatable).")
    ] = None,
    max_rows_per_s: Annotated[
        float | None,
        typer.Option(min=1, help="Rows read per second per worker (both tables; Spark: per task slot)."),
    ] = None,
    repair: Annotated[
        bool, typer.Option(help="Write rows missing on a side (plan only without --yes).")
    ] = False,
    yes: Annotated[bool, typer.Option(help="With --repair: write.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print result.json on stdout, not tables.")] = False,
) -> None:
    """Compare what should be in a table with what it holds; exit 0 equal, 1 differences, 5 inconclusive."""
    from astrachaos.cli.console import stdout
    from astrachaos.reconcile.output import write_files
    from astrachaos.run import signals

    signals.install()  # SIGTERM stops like Ctrl-C: compared ranges are checkpointed
    if out.exists() and not out.is_dir():
        raise UsageProblem(f"--out {out} is a file; give a directory for the reconcile's results")
    modes = [run is not None, expected is not None, source is not None or target is not None]
    if sum(modes) != 1:
        raise UsageProblem("give exactly one of --run, --expected (with --table), or --source with --target")
    if not modes[2] and (engine != "local" or workers != 1 or spark_master or spark_conf):
        raise UsageProblem("--engine, --workers and --spark-* apply to --source/--target comparisons")
    if run is not None:
        from astrachaos.reconcile.ledger_run import reconcile_run

        with _progress("buckets") as progress:
            result = reconcile_run(run, progress=progress)
    elif expected is not None:
        result = _expected(
            expected, table, key, key_path, key_regex, match, where, lookup, profile, concurrency
        )
    else:
        if source is None or target is None:
            raise UsageProblem("--source and --target go together")
        options = _table_options(splits, concurrency, page_size, resume, grace_s, columns,
                                 writetime_tolerance_ms, max_rows_per_s)  # fmt: skip
        chosen = _engine(engine, workers, concurrency, spark_master, spark_conf)
        result = _tables(source, target, profile, out, options, chosen, repair, yes)
    paths = write_files(result, out)
    if as_json:
        from astrachaos.cli.console import print_json

        print_json(result.to_json_dict())
        raise typer.Exit(int(result.exit_code))
    stdout.print(_render(result))
    stdout.print(f"[dim]result: {paths[0]}[/]")
    raise typer.Exit(int(result.exit_code))


def _expected(
    path: Path, table: str | None, key: str | None, key_path: str | None, key_regex: str | None,
    match: list[str] | None, where: list[str] | None, lookup: str, profile: str, concurrency: int,
) -> ReconcileResult:  # fmt: skip
    from astrachaos.reconcile.expected import reconcile_keys
    from astrachaos.reconcile.lookup import Strategy
    from astrachaos.reconcile.sides import open_sides

    if table is None or key is None:
        raise UsageProblem("--expected needs --table KS.TABLE and --key COL[,COL...]")
    if lookup not in {s.value for s in Strategy}:
        raise UsageProblem(f"--lookup must be one of {', '.join(s.value for s in Strategy)}")
    spec = key_spec(path, key, key_path, key_regex, match, where)
    with open_sides([table], profile) as (side,), _progress("keys") as progress:
        return reconcile_keys(path, spec, side, Strategy(lookup), concurrency, progress)


def key_spec(
    path: Path, key: str, key_path: str | None, key_regex: str | None,
    match: list[str] | None, where: list[str] | None = None,
) -> KeySpec:  # fmt: skip
    """How to read keys from the file at `path`, from --key, --key-path, --key-regex, --match, --where."""
    from astrachaos.reconcile.keyfile import KeySpec, guess_format, parse_assignments

    return KeySpec(
        columns=tuple(c.strip() for c in key.split(",") if c.strip()),
        format=guess_format(path, key_regex),
        key_path=key_path,
        regex=key_regex,
        match=parse_assignments(match or [], "--match"),
        fixed=parse_assignments(where or [], "--where"),
    )


def _table_options(
    splits: int, concurrency: int, page_size: int, resume: bool, grace_s: float, columns: str | None,
    tolerance: int | None, max_rows_per_s: float | None,
) -> TableOptions:  # fmt: skip
    from astrachaos.reconcile.tables import TableOptions

    return TableOptions(
        splits=splits, concurrency=concurrency, page_size=page_size, resume=resume, grace_s=grace_s,
        columns=None if columns is None else [c.strip() for c in columns.split(",") if c.strip()],
        writetime_tolerance_ms=tolerance, max_rows_per_s=max_rows_per_s,
    )  # fmt: skip


def _engine(
    engine: str, workers: int, concurrency: int, spark_master: str | None, spark_conf: list[str] | None
) -> Engine:
    from astrachaos.cli.console import stderr
    from astrachaos.reconcile.engines.choice import EngineKind, build_engine
    from astrachaos.reconcile.keyfile import parse_assignments

    if engine not in {k.value for k in EngineKind}:
        raise UsageProblem(f"--engine must be one of {', '.join(k.value for k in EngineKind)}")
    return build_engine(
        EngineKind(engine), workers=workers, concurrency=concurrency, spark_master=spark_master,
        spark_conf=parse_assignments(spark_conf or [], "--spark-conf"),
        notice=lambda text: stderr.print(text, soft_wrap=True, markup=False),
    )  # fmt: skip


def _tables(
    source: str, target: str, profile: str, out: Path, options: TableOptions, engine: Engine,
    repair: bool, yes: bool,
) -> ReconcileResult:  # fmt: skip
    from astrachaos.cli.console import stdout
    from astrachaos.reconcile.repair import repair as apply_repair
    from astrachaos.reconcile.repair import write_plan
    from astrachaos.reconcile.sides import open_sides
    from astrachaos.reconcile.tables import compare_tables

    concurrency = options.concurrency
    with open_sides([source, target], profile) as (src, tgt), _progress("token ranges") as progress:
        result = compare_tables(src, tgt, options, out, progress, engine)
    if repair and result.differences:
        plan = write_plan(result, out)
        stdout.print(
            f"repair plan: {len(result.missing_in_target)} rows to write to the target, "
            f"{len(result.missing_in_source)} to the source; differing rows are not repaired ({plan})"
        )
        if yes:
            with open_sides([source, target], profile) as (src, tgt):
                report = apply_repair(result, src, tgt, concurrency=max(concurrency, 16))
            stdout.print(
                f"repaired: {report.rows_to_target} rows to the target, {report.rows_to_source} to the "
                f"source, {report.statements} writes, {report.failures} failed"
            )
            if report.failures:
                raise _RepairFailed(report.failures)
        else:
            stdout.print("[yellow]nothing written: add --yes to repair[/]")
    return result


class _RepairFailed(UsageProblem):
    exit_code = ExitCode.ENVIRONMENT

    def __init__(self, failures: int) -> None:
        super().__init__(f"{failures} repair writes failed", hint="run reconcile again to see what is left")


class _progress:
    """Progress on stderr, fed by the engine's (done, total) callback: a Rich bar on a terminal,
    a line every 5 s in a log (CI, a pipe)."""

    def __init__(self, unit: str) -> None:
        self._unit = unit

    def __enter__(self) -> Progress:
        import time

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from astrachaos.cli.console import stderr

        self._bar: Progress | None = None
        if not stderr.is_terminal:
            began, last = time.monotonic(), [float("-inf")]

            def line(done: int, total: int) -> None:
                now = time.monotonic()
                if now - last[0] >= 5.0 or done == total:
                    last[0] = now
                    stderr.print(f"reconcile: {done}/{total} {self._unit} ({now - began:.0f} s)")

            return line
        self._bar = Progress(
            TextColumn(self._unit), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=stderr, transient=True,
        )  # fmt: skip
        self._task = self._bar.add_task(self._unit, total=None)
        self._bar.start()

        def update(done: int, total: int) -> None:
            assert self._bar is not None
            self._bar.update(self._task, completed=done, total=total)

        return update

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _render(result: ReconcileResult) -> object:
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table

    counts = Table(
        title=f"reconcile ({result.mode.value}): {escape(result.source)} → {escape(result.target)}"
    )
    for name in result.counts:
        counts.add_column(name.replace("_", " "), justify="right")
    counts.add_row(*(str(v) for v in result.counts.values()))
    parts: list[object] = [counts]
    lists = [("missing", result.missing), ("missing in target", result.missing_in_target),
             ("missing in source", result.missing_in_source)]  # fmt: skip
    for title, keys in lists:
        if keys:
            parts.append(f"{title} (first {min(_SHOWN, len(keys))} of {len(keys)}):")
            parts += [f"  {escape(str(dict(k)))}" for k in keys[:_SHOWN]]
    if result.differing:
        parts.append(f"differing (first {min(_SHOWN, len(result.differing))} of {len(result.differing)}):")
        for row in result.differing[:_SHOWN]:
            cols = "; ".join(f"{c.column}: {c.source!r} ≠ {c.target!r}" for c in row.columns)
            parts.append(f"  {escape(str(dict(row.key)))}  {escape(cols)}")
    if result.failed_ranges:
        parts.append(f"[red]unread token ranges: {[r.to_json() for r in result.failed_ranges]}[/]")
    colour = {ExitCode.OK: "green", ExitCode.EXPECTATIONS_UNMET: "red"}.get(result.exit_code, "yellow")
    parts.append(f"[{colour}]exit {int(result.exit_code)}: {result.verdict}[/]")
    return Group(*parts)  # type: ignore[arg-type]
