"""The HTML report: one self-contained page (plotly inlined, no network) for people to read."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from functools import cache
from html import escape
from importlib import resources

from astrachaos.ledger.extracts import Timeline
from astrachaos.reports import charts
from astrachaos.run.result import RunResult, nest
from astrachaos.verify.classify import FINE, RecordClass

MAX_ROWS = 1_000  # non-ok records in the page; all of them are in NOT_OK_CSV and result.json
NOT_OK_CSV = "not-ok.csv"
# plotly.js's "basic" partial bundle (scatter, bar): a quarter of the full one, see vendor/README.md.
PLOTLY_BUNDLE = "plotly-basic.min.js"
PLOTLY_VERSION = "4.1.1"
# After every chart script ran: how long the page took to draw, for people and for the render test.
_RENDERED = (
    "<script>document.body.setAttribute('data-rendered-ms',"
    "Math.round(performance.now()))</script>"
)

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em 2em;color:#222}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em}
.meta{color:#666}.verdict{padding:.7em 1em;border-radius:6px;font-weight:600;font-size:1.1em}
.pass{background:#e8f5e9;color:#1b5e20}.fail{background:#ffebee;color:#b71c1c}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;
padding:.6em 1.2em;min-width:9em}.card .n{font-size:1.8em;font-weight:700}
.card.bad{border-color:#c62828;color:#c62828}.card.good .n{color:#2e7d32}
table{border-collapse:collapse;margin:.4em 0}th,td{border-bottom:1px solid #eee;
padding:.25em .8em;text-align:left}td.num,th.num{text-align:right}.red{color:#c62828}
.green{color:#2e7d32}.cols{display:flex;gap:3em;flex-wrap:wrap}
#filter{padding:.4em;width:28em}.scroll{max-height:30em;overflow:auto}
"""

_FILTER_JS = """
function filterKeys(q){q=q.toLowerCase();var n=0;
document.querySelectorAll('#not-ok tbody tr').forEach(function(r){
var on=r.textContent.toLowerCase().indexOf(q)>=0;r.style.display=on?'':'none';if(on)n++;});
document.getElementById('shown').textContent=n;}
"""


@cache
def plotly_js() -> str:
    """The vendored plotly.js bundle the page inlines (no network when the page is opened)."""
    bundle = resources.files("astrachaos.reports").joinpath("vendor", PLOTLY_BUNDLE)
    if bundle.is_file():
        return bundle.read_text("utf-8")
    # An install built without `make setup` (which fetches the basic bundle from npm): plotly for
    # Python's own full bundle draws the same charts, also offline, in a page four times larger.
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def page(result: RunResult, timeline: Timeline) -> str:
    """The page of a run's result and its timeline."""
    title = f"astrachaos {result.scenario} {result.run_id}"
    body = "\n".join(
        [
            _header(result),
            _headline(result),
            _tables(result),
            _performance(result),
            _charts(result, timeline),
            _windows(timeline),
            _not_ok(result),
        ]
    )
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style><script>{plotly_js()}</script>"
        f"<script>{_FILTER_JS}</script></head>\n<body>\n{body}\n{_RENDERED}</body></html>\n"
    )


def _header(result: RunResult) -> str:
    ok = result.passed
    notes = "".join(f"<p class='meta'>note: {escape(n)}</p>" for n in result.notes)
    return (
        f"<h1>astrachaos · {escape(result.scenario)}</h1>"
        f"<p class='meta'>run {escape(result.run_id)} · pattern {escape(result.pattern)} · "
        f"seed {result.random_seed} · profile {escape(result.profile)} · table "
        f"{escape(result.keyspace)}.{escape(result.table)} · {escape(result.started_at)}"
        f" → {escape(result.finished_at)}</p>"
        f"<div class='verdict {'pass' if ok else 'fail'}' id='verdict'>exit {int(result.exit_code)}: "
        f"{escape(result.verdict)}</div>{notes}"
    )


def _headline(result: RunResult) -> str:
    v = result.verification
    cards = [
        ("records", v.records, ""),
        ("logged by the app", v.app_logged_success, ""),
        ("acknowledged", v.acknowledged, ""),
        ("present", v.present, ""),
        ("silent", v.silent, "bad" if v.silent else "good"),
    ]
    html = "".join(
        f"<div class='card {cls}' id='count-{label.split()[0]}'><div class='n'>{n}</div>"
        f"<div>{label}</div></div>"
        for label, n, cls in cards
    )
    return f"<h2>What the app believed vs what the database holds</h2><div class='cards'>{html}</div>"


def _tables(result: RunResult) -> str:
    v = result.verification
    counts = v.counts
    classes = [
        (f"<span class='{'green' if cls in FINE else 'red'}'>{cls.value}</span>",
         counts.get(cls, 0))
        for cls in RecordClass
        if counts.get(cls, 0) or cls is RecordClass.OK
    ]  # fmt: skip
    expectations = [
        (escape(e.name), f"{e.budget:g}", f"{e.actual:g}",
         "<span class='green'>met</span>" if e.met else "<b class='red'>BROKEN</b>")
        for e in result.expectations
    ]  # fmt: skip
    by_writer = nest(v.by_writer)
    names = [cls.value for cls in RecordClass if any(cls.value in w for w in by_writer.values())]
    writers = [
        (escape(w), *(per_class.get(n, 0) for n in names))
        for w, per_class in sorted(by_writer.items(), key=lambda kv: int(kv[0]))
    ]
    silent = v.silent_by_error
    errors = [
        (escape(e), escape(", ".join(f"{k} {n}" for k, n in sorted(cs.items()))), silent.get(e, 0))
        for e, cs in sorted(nest(v.by_error).items(), key=lambda kv: -sum(kv[1].values()))
    ]
    return (
        "<div class='cols'>"
        + "".join(
            [
                _section("Expectations", _table(["budget", "allowed", "actual", ""], expectations)),
                _section("Classes", _table(["class", "records"], classes)),
                _section("Per writer", _table(["writer", *names], writers)),
                _section(
                    "Not ok, by the driver's last error",
                    _table(["last error", "classes", "silent"], errors) if errors else "<p>none</p>",
                ),
            ]
        )
        + "</div>"
    )


def _performance(result: RunResult) -> str:
    lat, thr = result.latency, result.throughput
    return (
        f"<p>Statement latency ms: p50 {lat.p50:.2f} · p95 {lat.p95:.2f} · "
        f"p99 {lat.p99:.2f} · max {lat.max:.2f} ({lat.count} acknowledged statements)"
        f"<br>Throughput: {thr.writes_per_s:.0f} acknowledged records/s, "
        f"{thr.records_per_s:.0f} answered records/s over {thr.write_phase_s:.1f} s</p>"
    )


def _charts(result: RunResult, timeline: Timeline) -> str:
    if not timeline.seconds:
        return "<h2>Over time</h2><p>No record was answered: nothing to chart.</p>"
    parts = [
        charts.outcomes_chart(timeline),
        charts.classes_chart(timeline, nest(result.verification.by_second)),
        charts.latency_chart(timeline),
        charts.errors_chart(timeline) if timeline.by_error else "<p>No driver errors.</p>",
    ]
    return "<h2>Over time</h2>" + "".join(f"<div class='chart'>{p}</div>" for p in parts)


def _windows(timeline: Timeline) -> str:
    if not timeline.windows:
        return "<p class='meta'>No fault windows were recorded.</p>"
    rows = [
        (escape(w.label), f"{start:.2f}", "still open" if end is None else f"{end:.2f}")
        for w in timeline.windows
        for start, end in [timeline.seconds_of(w)]
    ]
    return _section("Fault windows (shaded in the charts)", _table(["fault", "from s", "to s"], rows))


def _not_ok(result: RunResult) -> str:
    records = result.verification.not_ok
    if not records:
        return "<h2>Records not ok</h2><p>None: every record is ok.</p>"
    shown = records[:MAX_ROWS]
    rows = [
        (r.bucket, r.key, r.record_id, escape(r.record_class.value),
         "yes" if r.silent else "", escape(r.outcome or ""),
         escape(r.error_class or ""), r.attempts, r.writer, r.batch,
         escape(r.found or ""))
        for r in shown
    ]  # fmt: skip
    columns = ["bucket", "key", "record", "class", "silent", "driver", "last error", "attempts",
               "writer", "batch", "found"]  # fmt: skip
    cut = f" (the first {len(shown)})" if len(shown) < len(records) else ""
    return (
        f"<h2>Records not ok: {len(records)}{cut}</h2>"
        f"<p>All {len(records)}: <a href='{NOT_OK_CSV}' id='all-not-ok'>{NOT_OK_CSV}</a> next to "
        "this page (and <code>records</code> in result.json).</p>"
        "<input id='filter' type='search' placeholder='filter: class, error, key, writer…' "
        "oninput='filterKeys(this.value)'> <span class='meta'><span id='shown'>"
        f"{len(shown)}</span> shown</span>"
        f"<div class='scroll'>{_table(columns, rows, table_id='not-ok')}</div>"
    )


def _section(title: str, content: str) -> str:
    return f"<div><h2>{escape(title)}</h2>{content}</div>"


def _table(columns: Sequence[str], rows: Iterable[Sequence[object]], table_id: str = "") -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    ident = f" id='{table_id}'" if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: object) -> str:
    # Numbers align right; strings arrive escaped (some carry markup of our own).
    return f"<td class='num'>{value}</td>" if isinstance(value, int) else f"<td>{value}</td>"


_CSV_FIELDS = ["run_id", "bucket", "key", "record_id", "class", "silent", "driver_outcome",
               "last_error", "last_error_message", "attempts", "writer", "batch", "app_logged",
               "found"]  # fmt: skip


def not_ok_csv(result: RunResult) -> str:
    """Every record that is not ok, one CSV row each (the page lists only the first MAX_ROWS)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, _CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in result.to_json_dict()["records"]:
        writer.writerow({**record, **record["key"]})
    return out.getvalue()
