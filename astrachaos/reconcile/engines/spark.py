"""`--engine spark`: each token range is one Spark task running `diff_range` in a Python worker.

No connector jar: executors run astrachaos's own Python function, each worker process with its
own driver Cluster (opened on its first range, kept while Spark reuses the worker). Ranges go out
in jobs of one wave (one task per slot), two jobs at a time so slots do not idle at a wave's
tail; when a job ends its ranges reach the checkpoint, so a killed run loses at most two waves.
Secrets reach the Python workers as environment variables of the task's Python function
(`SparkContext.environment`), never inside the pickled closure, never in the Spark conf.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from astrachaos.errors import EnvironmentProblem
from astrachaos.reconcile.engines.interface import EngineContext, OutcomeSink
from astrachaos.reconcile.rangediff import RangeJob, RangeOutcome, diff_range
from astrachaos.reconcile.tokens import TokenRange

log = logging.getLogger(__name__)
INSTALL_HINT = "pip install 'astrachaos[spark]' (pyspark 3.5+ and a Java 17 runtime)"
_DEFAULTS = {"spark.ui.showConsoleProgress": "false", "spark.app.name": "astrachaos reconcile"}


@dataclass(frozen=True)
class SparkTasks:
    """One Spark task per token range, on `master` (None: spark-submit's, else local[*])."""

    master: str | None = None
    conf: Mapping[str, str] = field(default_factory=dict)
    notice: Callable[[str], None] | None = None  # told the Spark UI address once the session is up
    jobs_at_once: int = 2

    def run(
        self, job: RangeJob, ranges: Sequence[TokenRange], done: OutcomeSink, context: EngineContext
    ) -> None:
        """Diff every range as a Spark task; a job that fails makes its ranges fail."""
        with spark_context(self.master, self.conf) as sc:
            if self.notice is not None:
                self.notice(
                    f"Spark UI: {sc.uiWebUrl or 'disabled'} (application {sc.applicationId}, "
                    f"master {sc.master}, {sc.defaultParallelism} task slots)"
                )
            if not ranges:
                return
            for name, value in context.secret_env.items():
                sc.environment[name] = value
            try:
                self._waves(sc, job, ranges, done)
            finally:
                for name in context.secret_env:
                    sc.environment.pop(name, None)

    def _waves(self, sc: Any, job: RangeJob, ranges: Sequence[TokenRange], done: OutcomeSink) -> None:
        size = max(1, sc.defaultParallelism)
        waves = [list(ranges[i : i + size]) for i in range(0, len(ranges), size)]
        task = partial(_diff_bounds, job)

        def one(number: int, wave: list[TokenRange]) -> list[RangeOutcome]:
            sc.setJobDescription(f"astrachaos reconcile: token ranges, wave {number + 1} of {len(waves)}")
            bounds = [(r.start, r.end) for r in wave]
            try:
                outcomes: list[RangeOutcome] = sc.parallelize(bounds, len(bounds)).map(task).collect()
            except Exception as error:  # an executor lost, a worker that cannot import astrachaos
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                log.warning("Spark job for wave %s failed: %s", number + 1, reason)
                return [RangeOutcome(r.start, r.end, None, f"Spark job failed: {reason}") for r in wave]
            return outcomes

        with ThreadPoolExecutor(max_workers=self.jobs_at_once) as pool:
            futures = [pool.submit(one, n, wave) for n, wave in enumerate(waves)]
            for future in as_completed(futures):
                for outcome in future.result():
                    done(outcome)


def _diff_bounds(job: RangeJob, bounds: tuple[int, int]) -> RangeOutcome:
    """The Spark task: one range, in an executor's Python worker."""
    return diff_range(job, *bounds)


def require_pyspark() -> None:
    """An EnvironmentProblem (exit 4) saying how to install pyspark, when it is not installed."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise EnvironmentProblem("--engine spark needs pyspark, which is not installed",
                                 hint=INSTALL_HINT) from None  # fmt: skip


@contextmanager
def spark_context(master: str | None, conf: Mapping[str, str]) -> Iterator[Any]:
    """The running SparkContext, or a new one (stopped on exit) for `master` with `conf`."""
    require_pyspark()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    running = SparkContext._active_spark_context
    if running is not None:
        yield running
        return
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # under spark-submit: its master and conf win
    chosen = master or conf.get("spark.master") or (None if submitted else "local[*]")
    if chosen is not None and chosen.startswith("local"):
        # Local executors run Python workers on this machine: make them this interpreter.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    _pin_java()
    builder = SparkSession.builder
    if chosen is not None:
        builder = builder.master(chosen)
    for key, value in {**_DEFAULTS, **conf}.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as error:
        raise EnvironmentProblem(
            f"cannot start Spark on {chosen or 'the spark-submit master'}: {error}",
            hint="check --spark-master, --spark-conf and JAVA_HOME (a JDK 17)",
        ) from None
    try:
        yield session.sparkContext
    finally:
        session.stop()


def _pin_java() -> None:
    """pyspark starts `java` from JAVA_HOME: point it at a JDK 17 when the caller did not."""
    if os.environ.get("JAVA_HOME"):
        return
    from astrachaos.local.java import find_java_home

    with contextlib.suppress(EnvironmentProblem):  # else `java` on PATH, or Spark's own message
        os.environ["JAVA_HOME"] = str(find_java_home().path)
