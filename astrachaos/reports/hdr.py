"""The latency of acknowledged records as an HdrHistogram interval log (`latency.hlog`)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC, datetime

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogWriter

from astrachaos.ledger.extracts import LatencyLog

LOWEST_NS = 1_000  # values are nanoseconds, the unit HdrHistogram log tools assume
HIGHEST_NS = 3_600 * 1_000_000_000
SIGNIFICANT_DIGITS = 3


def render_hlog(log: LatencyLog) -> str:
    """An HdrHistogram log: one interval for the write phase, then one per fault window.

    Timestamps are seconds since the write phase started (`#[BaseTime]` is its wall clock);
    a comment before each interval names it. Latency is first submit to acknowledgement.
    """
    latencies, windows, origin = log.latencies, log.windows, log.origin_ns
    if origin is None:
        origin = min((done - lat for done, lat in latencies), default=0)
    last_ns = max((done for done, _ in latencies), default=origin)
    out = io.StringIO()
    writer = HistogramLogWriter(out)
    writer.output_log_format_version()
    started = _wall_start(log.started_at)
    if started is not None:
        stamp = f"{started:.3f} (seconds since epoch), {datetime.fromtimestamp(started, UTC).isoformat()}"
        writer.output_comment(f"[StartTime: {stamp}]")
        writer.output_base_time(started * 1000)
    writer.output_comment(
        "astrachaos: latency of acknowledged records in ns, first submit to acknowledgement"
    )
    writer.output_legend()
    intervals = [("write phase", origin, last_ns)] + [
        (f"fault window {w.window_id}: {w.injector} ({w.kind})", w.start_ns, w.end_ns or last_ns)
        for w in windows
    ]
    for label, start_ns, end_ns in intervals:
        histogram = _histogram(lat for done, lat in latencies if start_ns <= done <= end_ns)
        writer.output_comment(f"interval: {label}")
        # A start of exactly 0 makes the writer fall back to the histogram's own stamp (also 0).
        writer.output_interval_histogram(
            histogram,
            start_time_stamp_sec=(start_ns - origin) / 1e9,
            end_time_stamp_sec=(max(end_ns, start_ns) - origin) / 1e9,
        )
    return out.getvalue()


def _histogram(latencies_ns: Iterable[int]) -> HdrHistogram:
    histogram = HdrHistogram(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)
    for value in latencies_ns:
        histogram.record_value(min(max(value, LOWEST_NS), HIGHEST_NS))
    return histogram


def _wall_start(started_at: str) -> float | None:
    try:
        return datetime.fromisoformat(started_at).timestamp()
    except ValueError:
        return None
