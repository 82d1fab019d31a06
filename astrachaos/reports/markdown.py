"""A Markdown summary of a run for CI job pages (e.g. `$GITHUB_STEP_SUMMARY`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from astrachaos.reports.junit import class_counts
from astrachaos.run.result import RunResult

SHOWN_KEYS = 20


def render_markdown(result: RunResult) -> str:
    """A Markdown summary of one run: verdict, headline, budgets, first keys."""
    v = result.verification
    mark = "✅" if result.passed else "❌"
    silent = f"**{v.silent}**" if v.silent else "0"
    lines = [
        f"## {mark} astrachaos `{result.scenario}`: exit {int(result.exit_code)}, {result.verdict}",
        "",
        f"run `{result.run_id}` · pattern `{result.pattern}` · seed {result.random_seed} · "
        f"profile `{result.profile}`",
        "",
        *_table(
            ["records", "logged by the app", "acknowledged", "present", "silent"],
            [[v.records, v.app_logged_success, v.acknowledged, v.present, silent]],
        ),
        "",
        f"Classes: {class_counts(result) or 'none'}",
        "",
    ]
    if result.expectations:
        rows = [
            [e.name, f"{e.budget:g}", f"{e.actual:g}", "met" if e.met else "**BROKEN**"]
            for e in result.expectations
        ]
        lines += [*_table(["budget", "allowed", "actual", ""], rows), ""]
    lines += [_performance(result), ""]
    lines += _not_ok(result)
    lines += [f"> note: {n}" for n in result.notes]
    return "\n".join(lines).rstrip() + "\n"


def _performance(result: RunResult) -> str:
    lat, thr = result.latency, result.throughput
    return (
        f"Latency ms: p50 {lat.p50:.2f} · p99 {lat.p99:.2f} · max {lat.max:.2f}. "
        f"Throughput: {thr.writes_per_s:.0f} acknowledged records/s over "
        f"{thr.write_phase_s:.1f} s."
    )


def _not_ok(result: RunResult) -> list[str]:
    records = result.verification.not_ok
    if not records:
        return []
    shown = sorted(records, key=lambda r: not r.silent)[:SHOWN_KEYS]  # silent ones first
    rows = [
        [r.bucket, r.key, r.record_id, r.record_class.value,
         "yes" if r.silent else "", r.error_class or "", r.attempts]
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
