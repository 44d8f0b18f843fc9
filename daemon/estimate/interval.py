"""P10-P90 ranges around the wait estimates, calibrated on what the daemon saw.

Every estimate that met its call leaves a *scaled residual* r = (actual - estimate) /
(estimate + SCALE_S), kept per hall (the last `KEEP`). The range of a new estimate e is

    [max(0, e + q10 * (e + SCALE_S)),  e + q90 * (e + SCALE_S)]

with q10 and q90 the 10th and 90th percentiles of the hall's residuals, shrunk towards prior
percentiles (fitted once on the development families of `sensors.scenarios`) by `PRIOR_WEIGHT`
pseudo-residuals; q10 <= 0 <= q90, so the range always holds the estimate. It widens with the
estimate (a long wait is less certain in seconds) and with how wrong the hall's estimates have
been. It costs a lookup per estimate: the percentiles are re-sorted only after new residuals.
"""

from __future__ import annotations

from dataclasses import dataclass

SCALE_S = 120.0  # a short wait still gets about a service time's width
KEEP = 400  # residuals per hall: about two busy days
PRIOR_WEIGHT = 40.0
PRIOR_Q10 = -0.55
PRIOR_Q90 = 0.75


@dataclass(frozen=True, slots=True)
class Band:
    q10: float
    q90: float

    def around(self, estimate: float) -> tuple[float, float]:
        """(p10, p90) of the wait, in seconds, for a point estimate."""
        scale = estimate + SCALE_S
        return max(0.0, estimate + self.q10 * scale), estimate + self.q90 * scale


PRIOR = Band(PRIOR_Q10, PRIOR_Q90)


def residual(estimate: float, actual: float) -> float:
    return (actual - estimate) / (estimate + SCALE_S)


def _percentile(xs: list[float], q: float) -> float:
    pos = q * (len(xs) - 1)
    i = int(pos)
    return xs[i] if i + 1 >= len(xs) else xs[i] + (xs[i + 1] - xs[i]) * (pos - i)


def band(residuals: list[float] | None) -> Band:
    """The hall's band: its residuals' percentiles, shrunk to the prior."""
    if not residuals:
        return PRIOR
    xs = sorted(residuals)
    n = len(xs)
    w = n / (n + PRIOR_WEIGHT)
    q10 = w * _percentile(xs, 0.1) + (1.0 - w) * PRIOR.q10
    q90 = w * _percentile(xs, 0.9) + (1.0 - w) * PRIOR.q90
    return Band(min(0.0, q10), max(0.0, q90))
