"""`run --metrics-port` serves Prometheus metrics while a real run writes, and its classes after."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration


def scrape(url: str) -> dict[str, list[Any]]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def total(samples: list[Any], suffix: str = "_total", **labels: str) -> float:
    return sum(
        s.value for s in samples
        if s.name.endswith(suffix) and all(s.labels.get(k) == v for k, v in labels.items())
    )  # fmt: skip


def test_metrics_are_scraped_during_a_real_run_and_classes_after(
    local_cluster: Any, tmp_path: Any
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "astrachaos", "run", "basic-chaos", "--out", str(tmp_path / "run"),
         "--set", "workload.records=6000", "--set", "workload.rate=1500", "--quiet",
         "--metrics-port", "0", "--metrics-linger", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stderr is not None and child.stdout is not None
    url = None
    for line in child.stderr:
        found = re.search(r"metrics: (http://\S+/metrics)", line)
        if found:
            url = found.group(1)
            break
    assert url, "the run names its metrics endpoint on stderr"

    during: dict[str, list[Any]] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        during = scrape(url)
        phase = [s.labels["phase"] for s in during.get("astrachaos_phase", [])]
        injected = total(during.get("astrachaos_faults_injected", []))
        # An injected failure answers at once, an acked write only once the node answered (the
        # first ones wait for the statement to be prepared): wait for both.
        acked = total(during.get("astrachaos_records_answered", []), outcome="acked")
        if phase == ["writing"] and injected > 0 and acked > 0:
            break
        time.sleep(0.3)
    assert [s.labels["phase"] for s in during["astrachaos_phase"]] == ["writing"]
    assert total(during["astrachaos_records_answered"], outcome="acked") > 0
    assert total(during["astrachaos_faults_injected"], injector="client", type="Unavailable") > 0
    assert total(during["astrachaos_throttler_admitted"]) > 0
    assert total(during["astrachaos_write_latency_seconds"], "_count", scenario="basic-chaos") > 0

    verdict = child.stdout.readline()  # printed before the metrics linger
    assert "basic-chaos: exit 0" in verdict
    after = scrape(url)
    classes = {s.labels["class"]: s.value for s in after["astrachaos_records_class"]}
    assert classes["ok"] + classes["failed"] == 6000 and classes["failed"] > 0
    assert total(after["astrachaos_runs_finished"], exit_code="0") == 1
    assert child.wait(timeout=60) == 0
