"""The console report: the headline first, then classes, non-ok keys, latency, throughput, verdict."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from astrachaos.errors import ExitCode
from astrachaos.run.result import verdict_text
from astrachaos.verify.classify import RecordClass

SHOWN_KEYS = 15


def render(result: dict[str, Any]) -> RenderableType:
    """A Rich renderable of a `result.json` dict (so earlier runs render the same way)."""
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


def _title(result: dict[str, Any]) -> Text:
    return Text.assemble(
        ("astrachaos ", "bold"),
        (result["scenario"], "bold cyan"),
        f"  run {result['run_id']}  pattern {result['pattern']}  seed {result['seed']}\n",
        f"table {result['keyspace']}.{result['table']}  profile {result['profile']}",
    )


def _headline(result: dict[str, Any]) -> Table:
    c = result["counts"]
    table = Table(title="What the app believed vs what the database holds", title_justify="left")
    for column in ("records", "logged by the app", "acknowledged", "present", "silent"):
        table.add_column(column, justify="right")
    silent = str(c["silent"])
    table.add_row(
        str(c["records"]),
        str(c["app_logged_success"]),
        str(c["acknowledged"]),
        str(c["present"]),
        f"[bold red]{silent}[/]" if c["silent"] else f"[green]{silent}[/]",
    )
    return table


def _classes(result: dict[str, Any]) -> Table:
    c = result["counts"]
    table = Table(title="Classes", title_justify="left")
    table.add_column("class")
    table.add_column("records", justify="right")
    for cls in RecordClass:
        n = c.get(cls.value, 0)
        if n or cls is RecordClass.OK:
            style = (
                "green"
                if cls in (RecordClass.OK, RecordClass.STALE, RecordClass.RECOVERED)
                else "red"
            )
            table.add_row(f"[{style}]{cls.value}[/]", str(n))
    return table


def _blame(result: dict[str, Any]) -> RenderableType:
    by_error: dict[str, dict[str, int]] = result["breakdown"]["by_error"]
    silent: dict[str, int] = result["breakdown"]["silent_by_error"]
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


def _not_ok(result: dict[str, Any]) -> RenderableType:
    records = result["records"]
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
            str(r["key"]["bucket"]),
            str(r["key"]["key"]),
            str(r["record_id"]),
            r["class"],
            "yes" if r["silent"] else "",
            r["last_error"] or "",
            str(r["attempts"]),
            r["found"],
        )
    return table


def _performance(result: dict[str, Any]) -> Text:
    lat, thr = result["latency_ms"], result["throughput"]
    throttler = result.get("throttler") or {}
    line = (
        f"latency ms  p50 {lat['p50']:.2f}  p95 {lat['p95']:.2f}  p99 {lat['p99']:.2f}  "
        f"max {lat['max']:.2f}\n"
        f"throughput  {thr['writes_per_s']:.0f} acknowledged writes/s over "
        f"{thr['write_phase_s']:.1f} s"
    )
    if throttler:
        line += "\nthrottler   " + "  ".join(f"{k} {v}" for k, v in throttler.items())
    return Text(line)


def _expectations(result: dict[str, Any]) -> RenderableType:
    table = Table(title="Expectations", title_justify="left")
    for column in ("budget", "allowed", "actual", ""):
        table.add_column(column)
    for e in result["expectations"]:
        mark = "[green]met[/]" if e["met"] else "[bold red]BROKEN[/]"
        table.add_row(e["name"], f"{e['budget']:g}", f"{e['actual']:g}", mark)
    return table


def _verdict(result: dict[str, Any]) -> Text:
    code = ExitCode(result["exit_code"])
    style = "bold green" if code is ExitCode.OK else "bold red"
    notes = "".join(f"\nnote: {n}" for n in result.get("notes", []))
    return Text.assemble(("exit " + str(int(code)) + ": " + verdict_text(code), style), notes)
