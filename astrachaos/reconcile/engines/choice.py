"""`--engine` and `--workers`: which engine a command line asks for, built with an exhaustive match."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import assert_never

from astrachaos.errors import UsageProblem
from astrachaos.reconcile.engines.interface import Engine


class EngineKind(StrEnum):
    """Where the token ranges are diffed."""

    LOCAL = "local"  # this machine: threads of this process, or --workers processes
    SPARK = "spark"  # Spark tasks on --spark-master


def build_engine(
    kind: EngineKind,
    *,
    workers: int,
    concurrency: int,
    spark_master: str | None = None,
    spark_conf: Mapping[str, str] | None = None,
    notice: Callable[[str], None] | None = None,
) -> Engine:
    """The engine for these options; options of another engine are a UsageProblem."""
    match kind:
        case EngineKind.LOCAL:
            if spark_master is not None or spark_conf:
                raise UsageProblem("--spark-master and --spark-conf go with --engine spark")
            if workers == 1:
                from astrachaos.reconcile.engines.threads import Threads

                return Threads(concurrency)
            from astrachaos.reconcile.engines.processes import LocalProcesses

            return LocalProcesses(workers=workers, threads=concurrency)
        case EngineKind.SPARK:
            if workers != 1:
                raise UsageProblem(
                    "--workers is for --engine local; Spark's parallelism is its executors' task slots",
                    hint="e.g. --spark-master 'local[4]', or --spark-conf spark.executor.instances=8",
                )
            from astrachaos.reconcile.engines.spark import SparkTasks, require_pyspark

            require_pyspark()

            return SparkTasks(master=spark_master, conf=dict(spark_conf or {}), notice=notice)
        case _:
            assert_never(kind)
