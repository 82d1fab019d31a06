"""Live Prometheus metrics of runs (`--metrics-port`): an observer of the run, served over HTTP.

Counters come from the run's events (what the driver answered, and when) and, at each scrape,
from the live run (throttler, injectors, active faults); the classes of outcome are known once
verification has read the table back, and are published then. A failure to collect is logged
and leaves the run alone.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from astrachaos.events import EventBus, WriteCompleted
from astrachaos.run.progress import RunProgress

if TYPE_CHECKING:
    from astrachaos.run.runner import Runner

log = logging.getLogger(__name__)

PREFIX = "astrachaos"
# Write latency buckets in seconds: a local node answers in ms, a throttled queue in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class MetricsProgress(RunProgress):
    """The run's progress counters, also counted per driver outcome and timed, for Prometheus."""

    def __init__(self, planned_total: int, latency: Histogram) -> None:
        super().__init__(planned_total)
        self._latency = latency
        self._by_outcome: Counter[str] = Counter()
        self._metrics_lock = threading.Lock()

    def subscribe(self, bus: EventBus) -> None:
        """Listen to a run's events: the progress counters and these metrics."""
        super().subscribe(bus)
        bus.subscribe(WriteCompleted, self._observe)

    def _observe(self, event: WriteCompleted) -> None:
        with self._metrics_lock:
            self._by_outcome[event.outcome.value] += len(event.record_ids)
        if event.outcome.value == "acked":
            self._latency.observe((event.completed_ns - event.submitted_ns) / 1e9)

    def by_outcome(self) -> dict[str, int]:
        """Records answered so far, by the driver's outcome."""
        with self._metrics_lock:
            return dict(self._by_outcome)


class RunCollector(Collector):
    """Reads the current run at each scrape; keeps the classes of each finished run."""

    def __init__(self) -> None:
        self.runner: Runner | None = None
        self.progress: MetricsProgress | None = None
        self.classes: dict[tuple[str, str], dict[str, int]] = {}  # (scenario, run_id) → counts
        self.runs_finished: Counter[int] = Counter()  # by exit code

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except Exception:  # an observer must never break the run, nor the scrape
            log.exception("collecting metrics failed")

    def _collect(self) -> Iterator[Metric]:
        yield from self._finished()
        runner, progress = self.runner, self.progress
        if runner is None or progress is None:
            return
        labels = {"scenario": runner.scenario.name, "run_id": runner.run_id}
        snapshot = progress.snapshot()
        yield _gauge("phase", "The current phase of the run (1 for the phase it is in).",
                     {**labels, "phase": snapshot.phase}, 1)  # fmt: skip
        yield _gauge("records_planned", "Records the run means to write.", labels, snapshot.planned_total)
        answered = CounterMetricFamily(
            f"{PREFIX}_records_answered", "Records the driver answered, by its outcome (retries "
            "count again).", labels=[*labels, "outcome"],
        )  # fmt: skip
        for outcome, count in sorted(progress.by_outcome().items()):
            answered.add_metric([*labels.values(), outcome], count)
        yield answered
        errors = CounterMetricFamily(
            f"{PREFIX}_driver_errors", "Records answered with an error, by error class.",
            labels=[*labels, "error"],
        )  # fmt: skip
        for error, count in sorted(snapshot.by_error.items()):
            errors.add_metric([*labels.values(), error], count)
        yield errors
        active = GaugeMetricFamily(
            f"{PREFIX}_faults_active", "Faults active now (1 each).", labels=[*labels, "fault"]
        )
        for fault in snapshot.active_faults:
            active.add_metric([*labels.values(), fault], 1)
        yield active
        yield from _throttler(runner, labels)
        yield from _injectors(runner, labels)

    def _finished(self) -> Iterator[Metric]:
        classes = GaugeMetricFamily(
            f"{PREFIX}_records_class", "Records of a finished run by class of outcome (after "
            "verification).", labels=["scenario", "run_id", "class"],
        )  # fmt: skip
        for (scenario, run_id), counts in self.classes.items():
            for name, count in counts.items():
                classes.add_metric([scenario, run_id, name], count)
        yield classes
        finished = CounterMetricFamily(
            f"{PREFIX}_runs_finished", "Runs finished, by exit code.", labels=["exit_code"]
        )
        for code, count in sorted(self.runs_finished.items()):
            finished.add_metric([str(code)], count)
        yield finished


def _gauge(name: str, doc: str, labels: dict[str, str], value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels))
    gauge.add_metric(list(labels.values()), value)
    return gauge


def _throttler(runner: Runner, labels: dict[str, str]) -> Iterator[Metric]:
    sides = runner.sides
    if not sides or sides[0].sessions is None:
        return
    totals: Counter[str] = Counter()
    for live in sides[0].sessions.all_sessions():
        totals.update({k: v for k, v in asdict(live.throttled.stats()).items() if not k.startswith("max_")})
    for name in ("admitted", "throttled"):
        counter = CounterMetricFamily(
            f"{PREFIX}_throttler_{name}", f"Requests the client throttler {name}.", labels=list(labels)
        )
        counter.add_metric(list(labels.values()), totals[name])
        yield counter
    for name in ("in_flight", "queued"):
        yield _gauge(f"throttler_{name}", f"Requests {name.replace('_', ' ')} in the throttler now.",
                     labels, totals[name])  # fmt: skip


def _injectors(runner: Runner, labels: dict[str, str]) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        f"{PREFIX}_injector_requests", "Requests an injector saw.", labels=[*labels, "injector", "kind"]
    )
    injected = CounterMetricFamily(
        f"{PREFIX}_faults_injected", "Faults injected, by injector and type of fault.",
        labels=[*labels, "injector", "kind", "type"],
    )  # fmt: skip
    for side in runner.sides:
        for stats in _stats_of(side.plan):
            requests.add_metric([*labels.values(), stats.name, stats.kind], stats.requests)
            for fault_type, count in sorted(stats.by_type.items()):
                injected.add_metric([*labels.values(), stats.name, stats.kind, fault_type], count)
    yield requests
    yield injected


def _stats_of(plan: Any) -> list[Any]:
    try:
        return list(plan.injectors.stats())
    except Exception:  # not started yet
        return []


class MetricsServer:
    """A Prometheus endpoint for the runs of one command."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.registry = CollectorRegistry()
        self.collector = RunCollector()
        self.registry.register(self.collector)
        self.latency = Histogram(
            f"{PREFIX}_write_latency_seconds",
            "Latency of acknowledged statements (time queued in the client throttler included).",
            ["scenario"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.server, self.thread = start_http_server(port, host, registry=self.registry)
        self.port = self.server.server_port

    def watch(self, runner: Runner) -> None:
        """Read this run at each scrape, and count its events (call before `runner.run()`)."""
        scenario = runner.scenario
        progress = MetricsProgress(scenario.workload.records, self.latency.labels(scenario=scenario.name))
        progress.subscribe(runner.events)
        runner.progress = progress  # the runner subscribes it to the writes' events too
        self.collector.progress = progress
        self.collector.runner = runner

    def finished(self, runner: Runner, result: dict[str, Any]) -> None:
        """Publish a finished run's classes and exit code."""
        counts = result.get("counts", {})
        from astrachaos.verify.classify import RecordClass

        self.collector.classes[(runner.scenario.name, runner.run_id)] = {
            cls.value: int(counts.get(cls.value, 0)) for cls in RecordClass
        }
        self.collector.runs_finished[int(result["exit_code"])] += 1

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
