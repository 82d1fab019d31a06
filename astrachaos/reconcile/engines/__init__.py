"""Engines that run `diff_range` over the token ranges: threads, local processes, Spark tasks."""

from astrachaos.reconcile.engines.interface import Engine, EngineContext, OutcomeSink

__all__ = ["Engine", "EngineContext", "OutcomeSink"]
