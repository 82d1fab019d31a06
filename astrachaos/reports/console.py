"""The console report: the headline first, then classes, non-ok keys, latency, throughput, verdict."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from astrachaos.errors import ExitCode
from astrachaos.run.result import RunResult, nest
from astrachaos.verify.classify import FINE, RecordClass

SHOWN_KEYS = 15


def render(result: RunResult) -> RenderableType:
    """A Rich renderable of a run's result (`RunResult.from_json` renders earlier runs the same way)."""
    return Group(
        _title(result),
        _headline(result),
        _classes(result),
        _blame(result),
        _not_ok(result),
        _performance(result),
        _expectations(result),
        _verdict(result),
    )


def _title(result: RunResult) -> Text:
    return Text.assemble(
        ("astrachaos ", "bold"),
        (result.scenario, "bold cyan"),
        f"  run {result.run_id}  pattern {result.pattern}  seed {result.random_seed}\n",
        f"table {result.keyspace}.{result.table}  profile {result.profile}",
    )


def _headline(result: RunResult) -> Table:
    v = result.verification
    table = Table(title="What the app believed vs what the database holds", title_justify="left")
    for column in ("records", "logged by the app", "acknowledged", "present", "silent"):
        table.add_column(column, justify="right")
    silent = str(v.silent)
    table.add_row(
        str(v.records),
        str(v.app_logged_success),
        str(v.acknowledged),
        str(v.present),
        f"[bold red]{silent}[/]" if v.silent else f"[green]{silent}[/]",
    )
    return table


def _classes(result: RunResult) -> Table:
    counts = result.verification.counts
    table = Table(title="Classes", title_justify="left")
    table.add_column("class")
    table.add_column("records", justify="right")
    for cls in RecordClass:
        n = counts.get(cls, 0)
        if n or cls is RecordClass.OK:
            style = "green" if cls in FINE else "red"
            table.add_row(f"[{style}]{cls.value}[/]", str(n))
    return table


def _blame(result: RunResult) -> RenderableType:
    by_error = nest(result.verification.by_error)
    silent = result.verification.silent_by_error
    if not by_error:
        return Text("")
    table = Table(title="Not ok, by the driver's last error", title_justify="left")
    table.add_column("last error")
    table.add_column("classes")
    table.add_column("silent", justify="right")
    for error, classes in sorted(by_error.items(), key=lambda kv: -sum(kv[1].values())):
        spread = ", ".join(f"{k} {v}" for k, v in sorted(classes.items()))
        table.add_row(error, spread, str(silent.get(error, 0)))
    return table


def _not_ok(result: RunResult) -> RenderableType:
    records = result.verification.not_ok
    if not records:
        return Text("")
    table = Table(
        title=f"First {min(SHOWN_KEYS, len(records))} of {len(records)} records not ok "
        "(all are in result.json)",
        title_justify="left",
    )
    for column in ("bucket", "key", "record", "class", "silent", "last error", "attempts", "found"):
        table.add_column(column)
    for r in records[:SHOWN_KEYS]:
        table.add_row(
            str(r.bucket),
            str(r.key),
            str(r.record_id),
            r.record_class.value,
            "yes" if r.silent else "",
            r.error_class or "",
            str(r.attempts),
            r.found,
        )
    return table


def _performance(result: RunResult) -> Text:
    lat, thr, throttler = result.latency, result.throughput, result.throttler
    line = (
        f"latency ms  p50 {lat.p50:.2f}  p95 {lat.p95:.2f}  p99 {lat.p99:.2f}  "
        f"max {lat.max:.2f}\n"
        f"throughput  {thr.writes_per_s:.0f} acknowledged writes/s over "
        f"{thr.write_phase_s:.1f} s"
    )
    if throttler:
        line += "\nthrottler   " + "  ".join(f"{k} {v}" for k, v in throttler.items())
    return Text(line)


def _expectations(result: RunResult) -> RenderableType:
    table = Table(title="Expectations", title_justify="left")
    for column in ("budget", "allowed", "actual", ""):
        table.add_column(column)
    for e in result.expectations:
        mark = "[green]met[/]" if e.met else "[bold red]BROKEN[/]"
        table.add_row(e.name, f"{e.budget:g}", f"{e.actual:g}", mark)
    return table


def _verdict(result: RunResult) -> Text:
    code = result.exit_code
    style = "bold green" if code is ExitCode.OK else "bold red"
    notes = "".join(f"\nnote: {n}" for n in result.notes)
    return Text.assemble(("exit " + str(int(code)) + ": " + result.verdict, style), notes)
