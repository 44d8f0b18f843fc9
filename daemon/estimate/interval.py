"""P10-P90 ranges around the wait estimates, and their median correction, calibrated on what
the daemon saw.

Every forecast that met its call leaves a *scaled residual* r = (actual - forecast) /
(forecast + SCALE_S), kept per hall and per size of forecast (`bucket`: under a minute, under
ten, longer), and apart for the waits of a business-system outage (`key`), the last `KEEP`
of each. For a new forecast f, with q10, q50, q90 the percentiles
of its bucket's residuals (q10 and q90 moved away from q50 by `spread`) shrunk towards the
prior ones by `PRIOR_WEIGHT` pseudo-residuals,

    estimate = f + q50 * (f + SCALE_S),   range = [f + q10 * (f + SCALE_S), f + q90 * (f + SCALE_S)]

clipped at 0, with q10 <= q50 <= q90 so the range always holds the estimate. The hall's median
is first shrunk towards 0 by how well its residuals tell it from 0 (`_significant`): the waits of
a quiet hall scatter so widely that a dozen of them say little about a systematic error, and
waits that missed together, in a run, count as fewer (`_alike`, `EVIDENCE`), and, outside an
outage, as fewer against the prior too (`band(counted=True)`). The median
correction removes what the forward simulation gets wrong in this hall, systematically (its
arrivals, its patience); the range widens with the forecast (a long wait is less certain in
seconds) and with how wrong the hall's forecasts have been. Both cost a lookup per estimate:
the percentiles are re-sorted only after new residuals. A zero forecast (`ZERO`: a window is
free for the ticket) is called at once: it keeps no residual and gets a fixed short range.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

SCALE_S = 120.0  # a short wait still gets about a service time's width
KEEP = 300  # residuals per hall and bucket
PRIOR_WEIGHT = 25.0
BUCKETS = (60.0, 600.0)  # forecast bounds of buckets 0, 1; bucket 2 above
# A median correction needs this many times the evidence (its residuals count this many times
# fewer) per bucket: the waits of ten minutes or more are few, and come in bursts behind one
# long service, so a hall's last days taught its long forecasts corrections its next day did not
# bear out (development quiet1 warm: +104 s on its forecasts of ten minutes or more). With the
# runs (`_alike`), development warm quiet 0.848 -> 0.840, calm 0.890 -> 0.879, blend 0.746 ->
# 0.741; 4.0 cost warm green 0.004, 1.0 left quiet at 0.846.
EVIDENCE = (1.0, 1.0, 2.0)
# The median correction's weight against the prior (`band(counted=True)`, every key but an
# outage's): the residuals' number times the share of it that counts as independent (`_alike`:
# their runs about the median), as
# `_significant` already counts them for the shrink to 0. A hall's last days' long waits come in
# bursts: development blend11 warm had 39 residuals of forecasts of ten minutes or more in runs
# (0.75 of the runs an order at random makes) weighing as 39 against the prior of no correction,
# and its forecasts of 1.5 hours shortened by 90-150 s while its waits of two hours ran past
# them. Development bench: warm blend 0.741 -> 0.737, quiet 0.840 -> 0.837, cold surge 0.598 ->
# 0.590, no family worse by more than 0.002. Counting `EVIDENCE` in the weight as well shrank
# too hard where a hall's bias persists (warm repair +0.004, replayed). Not for the residuals of
# an outage (`key`): one burst by construction, the outage's, shrunk to the hall's ordinary band.

# The hall's own residuals are of the waits already called: early in the day and while a queue
# builds those are the shorter, better forecast ones, and their 10th-90th percentiles held 68-77%
# of the waits that followed on the development halls (cold). Their spread around the median is
# widened by `spread(n)`, 1.5 with few residuals, towards 1 as they cover more of the hall's
# days (fitted there: 0.71-0.82 of the waits told to wait a minute inside, cold; 0.78-0.87 warm).
SPREAD_EXTRA, SPREAD_N = 0.5, 50.0


def spread(n: int, extra: float = SPREAD_EXTRA) -> float:
    """How much a bucket's own 10th and 90th percentiles are moved away from its median, when
    it holds `n` residuals (`extra`: how much more than 1 with none)."""
    return 1.0 + extra * SPREAD_N / (n + SPREAD_N)


@dataclass(frozen=True, slots=True)
class Band:
    q10: float
    q50: float
    q90: float

    def apply(self, forecast: float) -> tuple[float, float, float]:
        """(estimate, p10, p90) in seconds for a forecast of the simulation."""
        scale = forecast + SCALE_S
        return (
            max(0.0, forecast + self.q50 * scale),
            max(0.0, forecast + self.q10 * scale),
            max(0.0, forecast + self.q90 * scale),
        )


#: Before the hall has a history: the 10th and 90th percentiles of the residuals of fresh
#: estimators over the development halls (tests/harness/estimate_seeds.json), zero forecasts
#: left out; no median correction until the hall has its own.
PRIORS = (Band(-0.14, 0.0, 0.46), Band(-0.26, 0.0, 0.82), Band(-0.18, 0.0, 0.56))


#: An exact-zero forecast: a window serving the service is idle with nobody before the
#: ticket. Such tickets are called at once (all of them on the development halls), so their
#: residuals teach nothing and are not kept: in bucket 0 they were most of its residuals and
#: shrank the range of the short waits after them to nothing (a third of those inside).
ZERO = Band(0.0, 0.0, 0.4)


#: How long after a business system is back its hall's waits still count as the outage's (the
#: backlog it left): their residuals are kept apart from the ordinary ones (`key`). Measured on
#: the development `outage` and `repair` halls: 600 s left the backlog's estimates uncorrected
#: (outage cold 0.718), 3600 s corrected the quieter hour after it too (0.707); 1800 s, 0.698.
AFTER_OUTAGE_S = 1800.0


def key(hall_sep: str, forecast: float, outage: bool) -> str:
    """The residual key of a forecast of the hall (`hall_sep`: the hall and the separator).

    Waits made during a business-system outage or the half hour after it (its backlog) are
    kept apart: they run long of the forecast, and mixed into the hall's ordinary residuals
    their median correction lengthened the quiet afternoon's estimates (development `outage`
    halls cold, from an hour after the outage: 0.72 of QL's MAE uncorrected, 0.80 corrected)."""
    return f"{hall_sep}{'o' if outage else ''}{bucket(forecast)}"


def learns(forecast: float) -> bool:
    """Whether a forecast's residual is kept (see `ZERO`)."""
    return forecast > 0.0


def bucket(forecast: float) -> int:
    return sum(forecast >= b for b in BUCKETS)


def residual(forecast: float, actual: float) -> float:
    return (actual - forecast) / (forecast + SCALE_S)


def _percentile(xs: list[float], q: float) -> float:
    pos = q * (len(xs) - 1)
    i = int(pos)
    return xs[i] if i + 1 >= len(xs) else xs[i] + (xs[i + 1] - xs[i]) * (pos - i)


def _alike(residuals: list[float], mid: float) -> float:
    """How much of the residuals' number counts as independent: the runs above and below the
    median in call order, over the runs an order at random would make (Wald-Wolfowitz),
    at most 1. Waits behind one long service miss together, in a run."""
    signs = [r > mid for r in residuals if r != mid]
    n, up = len(signs), sum(signs)
    if n < 2 or up in (0, n):
        return 1.0
    runs = 1 + sum(a != b for a, b in itertools.pairwise(signs))
    return min(1.0, runs / (1.0 + 2.0 * up * (n - up) / n))


def _significant(mid: float, xs: list[float], alike: float = 1.0) -> float:
    """The median `mid` of the sorted residuals `xs`, shrunk by how well they tell it from 0:
    by mid^2 / (mid^2 + se^2), se the median's standard error (1.25 times a robust sd, the
    interquartile range / 1.35, over the root of n). A hall whose waits scatter widely about
    their forecasts (a quiet hall: first in line, the shortest of a few services) gets little
    correction from a handful of them; one whose forecasts are off the same way, most of it.
    `alike`: the share of their number that counts (`_alike`, over `EVIDENCE`)."""
    n = max(1.0, len(xs) * alike)
    se = 1.2533 * (_percentile(xs, 0.75) - _percentile(xs, 0.25)) / 1.349 / math.sqrt(n)
    denom = mid * mid + se * se
    return mid * mid * mid / denom if denom > 0.0 else 0.0


def band(
    residuals: list[float] | None,
    prior: Band,
    evidence: float = 1.0,
    extra: float = SPREAD_EXTRA,
    counted: bool = False,
) -> Band:
    """A bucket's band: its residuals' percentiles (widened by `spread(n, extra)`), shrunk to
    the prior; `residuals` in the order of their calls, `evidence` the bucket's `EVIDENCE`.
    `counted`: the median is shrunk to the prior's by the residuals' independent number (their
    runs, `_alike`), not by their number (the note after `EVIDENCE`)."""
    if not residuals:
        return prior
    xs = sorted(residuals)
    n = len(xs)
    w = n / (n + PRIOR_WEIGHT)
    mid, k = _percentile(xs, 0.5), spread(n, extra)
    alike = _alike(residuals, mid)
    n50 = max(1.0, n * alike) if counted else n
    w50 = n50 / (n50 + PRIOR_WEIGHT)
    q10 = w * (mid + k * (_percentile(xs, 0.1) - mid)) + (1.0 - w) * prior.q10
    q50 = w50 * _significant(mid, xs, alike / evidence) + (1.0 - w50) * prior.q50
    q90 = w * (mid + k * (_percentile(xs, 0.9) - mid)) + (1.0 - w) * prior.q90
    return Band(min(q10, q50), q50, max(q90, q50))
