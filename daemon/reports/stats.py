"""Summary statistics of a report: wait figures and the estimator's accuracy."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hallwatch.daemon.estimate.model import ErrorOut


@dataclass(frozen=True, slots=True)
class WaitStats:
    """Waits from issue (or transfer) to call, in seconds."""

    n: int
    median_s: float | None
    p90_s: float | None
    over_share: float | None  # share at or over the target (the plan's 20 minutes)
    mean_s: float | None


def wait_stats(waits: Iterable[float], target_s: float) -> WaitStats:
    xs = sorted(waits)
    if not xs:
        return WaitStats(0, None, None, None, None)
    return WaitStats(
        len(xs),
        statistics.median(xs),
        nearest_rank(xs, 0.9),
        sum(1 for w in xs if w >= target_s) / len(xs),
        statistics.fmean(xs),
    )


def nearest_rank(sorted_xs: Sequence[float], q: float) -> float:
    """The smallest value with at least a share `q` of the values at or below it."""
    return sorted_xs[max(0, math.ceil(q * len(sorted_xs)) - 1)]


@dataclass(frozen=True, slots=True)
class Accuracy:
    n: int
    mae_s: float | None
    bias_s: float | None  # mean of estimate - actual: > 0 means we said longer than it was
    within_5min: float | None


def accuracy(errors: Iterable[ErrorOut]) -> Accuracy:
    errs = [e.estimated_wait_s - e.actual_wait_s for e in errors]
    if not errs:
        return Accuracy(0, None, None, None)
    return Accuracy(
        len(errs),
        statistics.fmean(abs(e) for e in errs),
        statistics.fmean(errs),
        sum(1 for e in errs if abs(e) <= 300) / len(errs),
    )
