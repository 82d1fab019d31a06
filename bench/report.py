"""Bench results as data, and their two renderings: a text table and a JSON document."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Metric:
    """One line of the table: the engine against its baseline (or against a ceiling)."""

    name: str
    unit: str
    engine: float  # median of the engine's samples
    baseline: float | None  # median of the baseline's samples; None: a ceiling, not a ratio
    ratio: float | None
    goal: str
    met: bool | None  # None: shown for insight, no goal
    engine_samples: tuple[float, ...] = ()
    baseline_samples: tuple[float, ...] = ()
    paired_ratios: tuple[float, ...] = ()  # per repetition: the noise the median hides


def ratio_metric(
    name: str, unit: str, engine: list[float], baseline: list[float], min_ratio: float
) -> Metric:
    """Median engine over median baseline; met when the ratio reaches `min_ratio`."""
    engine_median, baseline_median = statistics.median(engine), statistics.median(baseline)
    ratio = engine_median / baseline_median
    return Metric(
        name=name,
        unit=unit,
        engine=engine_median,
        baseline=baseline_median,
        ratio=ratio,
        goal=f"ratio >= {min_ratio}",
        met=ratio >= min_ratio,
        engine_samples=tuple(engine),
        baseline_samples=tuple(baseline),
        paired_ratios=tuple(e / b for e, b in zip(engine, baseline, strict=True)),
    )


def info_metric(name: str, unit: str, engine: list[float], baseline: list[float]) -> Metric:
    """A ratio shown to explain the others, held to no goal."""
    return replace(ratio_metric(name, unit, engine, baseline, 0.0), goal="(info)", met=None)


def ceiling_metric(name: str, unit: str, value: float, ceiling: float) -> Metric:
    """A single measurement held against an upper bound."""
    return Metric(name, unit, value, None, None, f"<= {ceiling:g} {unit}", value <= ceiling,
                  engine_samples=(value,))  # fmt: skip


@dataclass(frozen=True)
class BenchReport:
    """Everything one bench run measured."""

    command: str
    started_at: str
    seconds: float
    plan: dict[str, Any]
    metrics: list[Metric]
    environment: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        """The shape of `bench/results/latest.json`."""
        return asdict(self)


def table_text(report: BenchReport) -> str:
    """The metrics as an aligned text table, one line per metric."""
    header = ("metric", "engine", "baseline", "ratio", "goal", "met?")
    rows = [header] + [
        (
            m.name,
            f"{m.engine:,.1f} {m.unit}",
            "-" if m.baseline is None else f"{m.baseline:,.1f} {m.unit}",
            "-" if m.ratio is None else f"{m.ratio:.3f}",
            m.goal,
            "-" if m.met is None else "yes" if m.met else "NO",
        )
        for m in report.metrics
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    for m in report.metrics:
        if m.paired_ratios:
            spread = ", ".join(f"{r:.3f}" for r in m.paired_ratios)
            lines.append(f"  {m.name}: per-repetition ratios {spread}")
    return "\n".join(lines)
