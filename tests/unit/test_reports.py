"""Reports for people and for CI: JUnit, Markdown, the HDR latency log, HTML, report files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from astrachaos.config.catalog import resolve
from astrachaos.config.loader import load_scenario
from astrachaos.errors import EnvironmentProblem, ExitCode
from astrachaos.events import (
    AppLogged,
    DriverOutcome,
    EventBus,
    FaultWindow,
    Record,
    RecordsPlanned,
    WriteCompleted,
)
from astrachaos.ledger.extracts import LedgerExtracts, build_timeline, extracts_of
from astrachaos.ledger.writer import Ledger
from astrachaos.reports.files import ReportFormat, render, write_reports
from astrachaos.reports.hdr import render_hlog
from astrachaos.reports.html import page as html_page
from astrachaos.reports.junit import render_junit
from astrachaos.reports.markdown import render_markdown
from astrachaos.run import rundir
from astrachaos.run.result import (
    ExpectationOutcome,
    RunResult,
    SecondaryResult,
    Throughput,
)
from astrachaos.run.saved import open_run
from astrachaos.run.verdict import decide_exit_code
from astrachaos.verify.classify import RecordClass
from astrachaos.verify.partitions import NotOk, Verification
from astrachaos.workload.stats import Latency

ORIGIN_NS = 1_000_000_000_000  # the write phase starts here (monotonic ns, as the ledger's times)
S = 1_000_000_000
MS = 1_000_000


def result_of(*, lost: int = 0, silent: int = 0, records: int = 100) -> RunResult:
    """A run's result, with `lost` acknowledged-but-absent records and `silent` dropped ones."""
    v = Verification()
    v.records = records
    v.counts = Counter({RecordClass.OK: records - lost - silent, RecordClass.LOST: lost})
    if silent:
        v.counts[RecordClass.DROPPED] = silent
    v.acknowledged = records - silent
    v.present = records - lost - silent
    v.app_logged_success = records
    v.silent = lost + silent
    for i in range(lost):
        v.not_ok.append(NotOk(i, 0, i, RecordClass.LOST, True, "acked", 1, None, None, 0, 0, True, "absent"))
        v.by_error[("-", "lost")] += 1
        v.silent_by_error["-"] += 1
    for i in range(lost, lost + silent):
        v.not_ok.append(
            NotOk(i, 1, i, RecordClass.DROPPED, True, "dropped", 1, "RequestThrottlingError",
                  "queue full | overflow", 1, 2, True, "absent")
        )  # fmt: skip
        v.by_error[("RequestThrottlingError", "dropped")] += 1
        v.silent_by_error["RequestThrottlingError"] += 1
    v.by_writer[(0, "ok")] = records - lost - silent
    v.by_second[(0, "ok")] = records - lost - silent
    expectations = [
        ExpectationOutcome("lost", 0, lost, lost == 0),
        ExpectationOutcome("silent", 0, lost + silent, lost + silent == 0),
    ]
    return RunResult(
        run_id="20260101T000000-unit-abcdef",
        scenario="unit",
        random_seed=7,
        keyspace="astrachaos",
        table="records",
        profile="local",
        pattern="uploader",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:09+00:00",
        verification=v,
        throughput=Throughput(writes_per_s=50.0, records_per_s=50.0, write_phase_s=2.0),
        latency=Latency(count=records, p50=1.5, p95=3.0, p99=4.0, max=9.0),
        throttler={},
        expectations=expectations,
        exit_code=decide_exit_code(expectations, v),
    )


def result_dict(*, lost: int = 0, silent: int = 0, records: int = 100) -> dict[str, Any]:
    """The `result.json` dict a run writes for `result_of(...)`."""
    return result_of(lost=lost, silent=silent, records=records).to_json_dict()


def make_run_dir(path: Path, *, fault_window: bool = False) -> Path:
    """A run directory with a scenario, a ledger (40 acked records over 2 s, 10 dropped), a result.json."""
    rundir.create(path, load_scenario(resolve("uploader-verification")))
    bus = EventBus()
    meta = {"run_id": "run", "started_ns": str(ORIGIN_NS), "keyspace": "ks", "table": "t"}
    with Ledger.create(path / "ledger.sqlite", "run", meta) as ledger:
        ledger.subscribe(bus)
        records = tuple(Record(i, i % 2, 0, 0, i, "d") for i in range(50))
        bus.publish(RecordsPlanned(records, ORIGIN_NS))
        for i in range(40):
            sent = ORIGIN_NS + (i // 20) * S + i * MS
            latency = (i + 1) * MS  # 1..40 ms
            bus.publish(WriteCompleted((i,), DriverOutcome.ACKED, 1, sent, sent + latency))
        for i in range(40, 50):
            at = ORIGIN_NS + S + 500 * MS
            bus.publish(
                WriteCompleted((i,), DriverOutcome.DROPPED, 1, at, at, "RequestThrottlingError", "full")
            )
        bus.publish(AppLogged(tuple(range(50)), True, ORIGIN_NS))
        ledger.flush()
        if fault_window:
            window = FaultWindow("proxy-latency", "network", ORIGIN_NS + S, ORIGIN_NS + 2 * S)
            ledger.record_fault_window(window)
    (path / "result.json").write_text(json.dumps(result_dict(silent=10, records=50)))
    return path


def extracts(run: Path) -> LedgerExtracts:
    with Ledger.open(run / "ledger.sqlite") as ledger:
        return extracts_of(ledger)


def test_junit_parses_and_passes_when_nothing_was_lost() -> None:
    root = ET.fromstring(render_junit(result_of()))

    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "unit"
    assert [c.get("name") for c in suite.iter("testcase")] == ["lost", "silent", "verification"]
    assert root.get("failures") == "0" and not list(root.iter("failure"))


def test_junit_shows_a_failure_with_the_numbers_when_records_were_lost() -> None:
    root = ET.fromstring(render_junit(result_of(lost=3)))

    failures = {
        case.get("name"): case.find("failure")
        for case in root.iter("testcase")
        if case.find("failure") is not None
    }
    assert set(failures) == {"lost", "silent"} and root.get("failures") == "2"
    lost = failures["lost"]
    assert lost is not None
    assert lost.get("message") == "lost: 3 > budget 0 (ok 97, lost 3)"
    assert "budget lost: 0" in (lost.text or "") and "actual lost: 3" in (lost.text or "")


def test_junit_properties_carry_the_run_and_the_counts() -> None:
    root = ET.fromstring(render_junit(result_of(lost=1)))

    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["run_id"] == "20260101T000000-unit-abcdef"
    assert props["count.lost"] == "1" and props["exit_code"] == str(int(ExitCode.EXPECTATIONS_UNMET))


def test_markdown_leads_with_the_verdict_and_the_headline() -> None:
    text = render_markdown(result_of(silent=4))

    assert text.startswith("## ❌ astrachaos `unit`: exit 1")
    assert "| 100 | 100 | 96 | 96 | **4** |" in text
    assert "| silent | 0 | 4 | **BROKEN** |" in text
    assert "queue full" not in text  # messages stay in result.json; the table is for scanning
    assert "4 of 4 records not ok, silent first" in text


def test_markdown_of_a_clean_run_has_no_key_table() -> None:
    text = render_markdown(result_of())

    assert text.startswith("## ✅") and "<details>" not in text


def test_hdr_log_decodes_back_to_the_acked_latencies(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path)
    (tmp_path / "latency.hlog").write_text(render_hlog(extracts(run).latency_log))

    reader = HistogramLogReader(str(tmp_path / "latency.hlog"), HdrHistogram(1, 3_600 * S, 3))
    histogram = reader.get_next_interval_histogram()
    assert histogram is not None and histogram.get_total_count() == 40  # the dropped are not there
    assert histogram.get_max_value() == pytest.approx(40 * MS, rel=1e-3)
    assert histogram.get_value_at_percentile(50) == pytest.approx(20 * MS, rel=1e-3)
    assert reader.get_next_interval_histogram() is None


def test_hdr_log_has_one_interval_per_fault_window(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path, fault_window=True)
    text = render_hlog(extracts(run).latency_log)
    (tmp_path / "latency.hlog").write_text(text)

    reader = HistogramLogReader(str(tmp_path / "latency.hlog"), HdrHistogram(1, 3_600 * S, 3))
    phase, window = reader.get_next_interval_histogram(), reader.get_next_interval_histogram()
    assert phase is not None and window is not None
    assert (phase.get_total_count(), window.get_total_count()) == (40, 20)  # second 1 only
    assert "#interval: fault window 1: proxy-latency (network)" in text


def test_timeline_counts_each_second_and_its_latency(tmp_path: Path) -> None:
    with Ledger.open(make_run_dir(tmp_path) / "ledger.sqlite") as ledger:
        timeline = build_timeline(ledger)

    assert timeline.seconds == [0, 1]
    assert timeline.acked == [20, 20]
    assert timeline.by_outcome["dropped"] == [0, 10]
    assert timeline.by_error == {"RequestThrottlingError": [0, 10]}
    assert timeline.p50_ms[0] == pytest.approx(10.0) and timeline.p99_ms[1] == pytest.approx(40.0)


def test_html_is_self_contained_and_shades_fault_windows(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path, fault_window=True)
    page = html_page(open_run(run).result(), extracts(run).timeline)

    assert "<script src" not in page and "<link" not in page  # nothing fetched over the network
    assert "plotly.js (basic - minified) v" in page  # the library itself is inline
    assert "proxy-latency (network)" in page and '"type":"rect"' in page
    assert "id='count-silent'><div class='n'>10<" in page
    assert "filterKeys" in page and "RequestThrottlingError" in page


def test_the_inlined_plotly_bundle_is_the_basic_one_of_the_python_packages_major(
) -> None:
    from plotly.offline.offline import get_plotlyjs_version

    from astrachaos.reports.html import PLOTLY_VERSION, plotly_js

    assert f"plotly.js (basic - minified) v{PLOTLY_VERSION}" in plotly_js()[:200]
    assert len(plotly_js()) < 1_300_000
    assert PLOTLY_VERSION.split(".")[0] == get_plotlyjs_version().split(".")[0]


def test_html_lists_the_first_non_ok_records_and_links_a_csv_of_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import csv

    from astrachaos.reports import html

    run = make_run_dir(tmp_path)
    monkeypatch.setattr(html, "MAX_ROWS", 4)
    saved = open_run(run)
    page_path, csv_path = write_reports(run, [ReportFormat.HTML], saved.result(), saved.ledger_extracts())

    page = page_path.read_text()
    assert "Records not ok: 10 (the first 4)" in page
    assert page.count("<td>absent</td>") == 4  # the found column, one per listed record
    assert "href='not-ok.csv'" in page and csv_path.name == "not-ok.csv"
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 10 and {r["class"] for r in rows} == {"dropped"}
    assert rows[0]["last_error"] == "RequestThrottlingError" and rows[0]["run_id"]


def test_html_without_fault_windows_says_so(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path)
    page = html_page(open_run(run).result(), extracts(run).timeline)

    assert "No fault windows were recorded." in page and '"type":"rect"' not in page


def test_write_reports_writes_each_file_and_leaves_result_json(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path)
    before = (run / "result.json").read_text()
    saved = open_run(run)
    formats = [ReportFormat.JUNIT, ReportFormat.MARKDOWN, ReportFormat.HDR, ReportFormat.JSON]

    paths = write_reports(run, formats, saved.result(), saved.ledger_extracts())

    assert [p.name for p in paths] == ["junit.xml", "summary.md", "latency.hlog", "result.json"]
    assert all(p.is_file() for p in paths) and (run / "result.json").read_text() == before
    assert json.loads(render(ReportFormat.JSON, saved.result())) == json.loads(before)


def test_reports_that_read_the_ledger_refuse_to_render_without_its_extracts() -> None:
    with pytest.raises(ValueError, match="html"):
        render(ReportFormat.HTML, result_of())


def test_a_directory_without_result_json_is_a_clear_error(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path)
    (run / "result.json").unlink()
    with pytest.raises(EnvironmentProblem, match=r"no result\.json"):
        open_run(run).result()


def test_result_json_reads_back_to_the_same_result() -> None:
    result = result_of(lost=2, silent=3)
    result.verification.by_batch[(1, 2, "dropped")] = 3
    result.verification.unread_buckets.append(5)
    secondary = result_of(lost=1)
    dual = RunResult(
        **{**result.__dict__, "secondary": SecondaryResult("other", "ks2", "t2", "async-secondary",
                                                           secondary.verification)}
    )  # fmt: skip

    for original in (result, dual):
        data = original.to_json_dict()
        again = RunResult.from_json(json.loads(json.dumps(data)))
        assert again.to_json_dict() == data
        assert again.verification.counts == original.verification.counts
        assert again.verification.not_ok == original.verification.not_ok
        assert again.exit_code is original.exit_code


def test_without_the_fetched_basic_bundle_the_report_inlines_plotlys_full_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from plotly.offline import get_plotlyjs

    from astrachaos.reports import html

    monkeypatch.setattr(html, "PLOTLY_BUNDLE", "not-fetched.min.js")
    html.plotly_js.cache_clear()
    try:
        assert html.plotly_js() == get_plotlyjs()
    finally:
        html.plotly_js.cache_clear()  # the next test reads the fetched bundle again
