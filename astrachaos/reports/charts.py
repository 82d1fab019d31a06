"""Plotly figures of a run's timeline, fault windows shaded; returned as HTML fragments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from astrachaos.ledger.extracts import Timeline

# Red family: the record is not in the table; green family: it is.
CLASS_COLOURS = {
    "ok": "#2e7d32",
    "recovered": "#66bb6a",
    "stale": "#a5d6a7",
    "dropped": "#c62828",
    "lost": "#7f0000",
    "failed": "#ef6c00",
    "indeterminate": "#8e24aa",
    "overwritten": "#6d4c41",
    "corrupted": "#424242",
    "unexpected": "#1565c0",
    "duplicated": "#00838f",
}
OUTCOME_COLOURS = {
    "acked": "#2e7d32",
    "dropped": "#c62828",
    "failed": "#ef6c00",
    "indeterminate": "#8e24aa",
    "none": "#9e9e9e",
}
_WINDOW_FILL = "#ffb300"


def outcomes_chart(timeline: Timeline) -> str:
    """Records answered per second, stacked by the driver's outcome."""
    fig = _stacked(timeline.seconds, timeline.by_outcome, OUTCOME_COLOURS)
    return _finish(fig, timeline, "Records answered per second, by driver outcome", "records")


def latency_chart(timeline: Timeline) -> str:
    """p50 and p99 latency per second of acknowledged records."""
    fig = go.Figure()
    for name, values, colour in (
        ("p50", timeline.p50_ms, "#1565c0"),
        ("p99", timeline.p99_ms, "#c62828"),
    ):
        fig.add_trace(
            go.Scatter(x=timeline.seconds, y=values, name=name, mode="lines+markers",
                       line={"color": colour})
        )  # fmt: skip
    title = "Latency of acknowledged records (first submit to acknowledgement, retries included)"
    return _finish(fig, timeline, title, "ms")


def errors_chart(timeline: Timeline) -> str:
    """Records per second whose last driver error was each class."""
    fig = _stacked(timeline.seconds, timeline.by_error, {})
    return _finish(fig, timeline, "Driver errors per second, by error class (last error)", "records")


def classes_chart(timeline: Timeline, by_second: Mapping[str, Mapping[str, int]]) -> str:
    """Verified classes per second of the driver's answer (from result.json)."""
    seconds = sorted({*timeline.seconds, *(int(s) for s in by_second)})
    names = sorted({c for counts in by_second.values() for c in counts}, key=_class_order)
    series = {n: [by_second.get(str(s), {}).get(n, 0) for s in seconds] for n in names}
    fig = _stacked(seconds, series, CLASS_COLOURS)
    return _finish(fig, timeline, "Verified class per second of the driver's answer", "records")


def _stacked(
    seconds: Sequence[int], series: Mapping[str, Sequence[int]], colours: Mapping[str, str]
) -> go.Figure:
    fig = go.Figure()
    for name, values in series.items():
        marker = {"color": colours[name]} if name in colours else {}
        fig.add_trace(go.Bar(x=list(seconds), y=list(values), name=name, marker=marker))
    fig.update_layout(barmode="stack")
    return fig


def _finish(fig: go.Figure, timeline: Timeline, title: str, unit: str) -> str:
    last = (timeline.seconds[-1] + 1) if timeline.seconds else 1
    for w in timeline.windows:
        start_s, end_s = timeline.seconds_of(w)
        fig.add_vrect(
            x0=start_s,
            x1=end_s if end_s is not None else last,
            fillcolor=_WINDOW_FILL,
            opacity=0.25,
            line_width=0,
            layer="below",
            annotation_text=w.label,
            annotation_position="top left",
        )
    fig.update_layout(
        title=title,
        template="plotly_white",
        height=340,
        margin={"l": 60, "r": 20, "t": 50, "b": 40},
        xaxis={"title": "seconds since the write phase started", "range": [-0.5, last - 0.5]},
        yaxis={"title": unit, "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.2},
    )
    html: str = fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False})
    return html


def _class_order(name: str) -> int:
    order = list(CLASS_COLOURS)
    return order.index(name) if name in order else len(order)
