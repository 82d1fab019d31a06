"""A Markdown summary of a run for CI job pages (e.g. `$GITHUB_STEP_SUMMARY`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from astrachaos.reports.junit import class_counts

SHOWN_KEYS = 20


def render_markdown(result: dict[str, Any]) -> str:
    """A Markdown summary of one `result.json` dict: verdict, headline, budgets, first keys."""
    c = result["counts"]
    mark = "✅" if result["exit_code"] == 0 else "❌"
    silent = f"**{c['silent']}**" if c["silent"] else "0"
    lines = [
        f"## {mark} astrachaos `{result['scenario']}`: exit {result['exit_code']}, {result['verdict']}",
        "",
        f"run `{result['run_id']}` · pattern `{result['pattern']}` · seed {result['seed']} · "
        f"profile `{result['profile']}`",
        "",
        *_table(
            ["records", "logged by the app", "acknowledged", "present", "silent"],
            [[c["records"], c["app_logged_success"], c["acknowledged"], c["present"], silent]],
        ),
        "",
        f"Classes: {class_counts(result) or 'none'}",
        "",
    ]
    if result["expectations"]:
        rows = [
            [e["name"], f"{e['budget']:g}", f"{e['actual']:g}", "met" if e["met"] else "**BROKEN**"]
            for e in result["expectations"]
        ]
        lines += [*_table(["budget", "allowed", "actual", ""], rows), ""]
    lines += [_performance(result), ""]
    lines += _not_ok(result)
    lines += [f"> note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines).rstrip() + "\n"


def _performance(result: dict[str, Any]) -> str:
    lat, thr = result["latency_ms"], result["throughput"]
    return (
        f"Latency ms: p50 {lat['p50']:.2f} · p99 {lat['p99']:.2f} · max {lat['max']:.2f}. "
        f"Throughput: {thr['writes_per_s']:.0f} acknowledged records/s over "
        f"{thr['write_phase_s']:.1f} s."
    )


def _not_ok(result: dict[str, Any]) -> list[str]:
    records = result["records"]
    if not records:
        return []
    shown = sorted(records, key=lambda r: not r["silent"])[:SHOWN_KEYS]  # silent ones first
    rows = [
        [r["key"]["bucket"], r["key"]["key"], r["record_id"], r["class"],
         "yes" if r["silent"] else "", r["last_error"] or "", r["attempts"]]
        for r in shown
    ]  # fmt: skip
    return [
        "<details><summary>"
        f"{len(shown)} of {len(records)} records not ok, silent first (all are in result.json)"
        "</summary>",
        "",
        *_table(["bucket", "key", "record", "class", "silent", "last error", "attempts"], rows),
        "",
        "</details>",
        "",
    ]


def _table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return out


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
