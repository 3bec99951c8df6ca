"""Percentiles as every benchmark here reports them."""

from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def p50_p99_ms(values: list[float]) -> tuple[float, float]:
    """Median and p99 of durations in seconds, as milliseconds."""
    return statistics.median(values) * 1000, percentile(values, 0.99) * 1000
