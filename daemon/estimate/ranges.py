"""P10-P90 ranges from the forward simulation's own spread, calibrated on what the daemon saw.

The sampled runs of a ticket's forecast already say how uncertain its wait is: first in line
behind two busy windows, the wait is the shorter of two remaining services and spreads wide;
tenth in line at six windows, it spreads little compared with its length. The runs' own 10th
and 90th percentiles (`lo`, `hi`; exact for a ticket first in line) are too narrow, though: the
simulation knows the hall's laws only as well as it learned them. So each forecast f that met
its call leaves a *spread residual*

    z = (actual - f) / (f - lo + C_S)  below f,    z = (actual - f) / (hi - f + C_S)  above,

kept per hall and size of forecast (`interval.bucket`). A calibrated simulation would give
z10 = -1, z90 = +1; the hall's own 10th and 90th percentiles of z, shrunk to the priors fitted on
the development halls (not widened while they are few, as `interval.spread` widens the scaled
residuals: see `PRIORS`), give the range

    [f + z10 (f - lo + C_S), f + z90 (hi - f + C_S)],

which always holds the published estimate (`interval` still gives that: the forecast and its
median correction). Measured on the development halls when it came (issue #17, fifth round), the
waits of a minute or more inside the range: 0.76-0.83 per family before, 0.78-0.84 after (cold;
warm 0.80-0.85 both);
the quiet family's cold 0.76 to 0.82, its first-in-line waits spreading more than the old fixed
share of the forecast allowed.
A forecast without runs (quick mode, a queue past the simulation budget) keeps `interval`'s range.

Sixth round (every call kept, unwidened, C_S 60 s, the priors below), development: 0.78-0.82 of
the waits of a minute or more inside per family fresh, 0.78-0.83 learned (quiet 0.83, was 0.87);
0.07-0.12 below and 0.07-0.15 above; of the tickets told to wait a minute or more, 0.77-0.82.
"""

from __future__ import annotations

from collections.abc import Sequence

from hallwatch.daemon.estimate import interval
from hallwatch.daemon.estimate.interval import Band
from hallwatch.daemon.estimate.learned import SEP, Learned, push

C_S = 60.0  # a forecast whose runs all agree still gets a minute's width per side

#: Per bucket of forecast, the 10th and 90th percentiles of z the hall's own are shrunk to: fitted
#: by replaying the development halls' coverage (tests/harness/estimate_seeds.json, all families,
#: fresh estimators' day 0 and learned ones'; docs/decisions.md, sixth round) over C_S, the
#: widening of the hall's own percentiles while few (`interval.spread`: none here; widened, the
#: learned halls' ranges held 0.81-0.87 of the waits, too wide), the prior's weight and scale.
#: Every call leaves a residual, also one within the minute: a range is published when the
#: ticket is issued, to a customer who cannot know yet whether they will be called at once.
#: Kept from the waits of a minute or more only, the ranges were balanced for those who waited
#: but held only 0.70-0.78 of the tickets told to wait a minute or more.
PRIORS = (Band(-0.26, 0.0, 0.76), Band(-0.54, 0.0, 1.55), Band(-0.72, 0.0, 2.26))


def residual(forecast: float, actual: float, lo: float, hi: float) -> float:
    """The spread residual of a forecast `forecast` whose runs spread over [`lo`, `hi`]."""
    if actual < forecast:
        return (actual - forecast) / (max(0.0, forecast - lo) + C_S)
    return (actual - forecast) / (max(0.0, hi - forecast) + C_S)


def band(residuals: list[float] | None, forecast: float) -> Band:
    """The hall's band of spread residuals for a forecast of this size."""
    return interval.band(residuals, PRIORS[interval.bucket(forecast)], extra=0.0)


def bounds(b: Band, forecast: float, lo: float, hi: float, estimate: float) -> tuple[float, float]:
    """(p10, p90) of a forecast whose runs spread over [`lo`, `hi`], holding `estimate`."""
    p10 = forecast + b.q10 * (max(0.0, forecast - lo) + C_S)
    p90 = forecast + b.q90 * (max(0.0, hi - forecast) + C_S)
    return max(0.0, min(p10, estimate)), max(p90, estimate)


def learn(
    learned: Learned,
    cache: dict[str, Band],
    hall: str,
    forecast: float,
    actual: float,
    spread: Sequence[float],
) -> None:
    """Keep the spread residual of a forecast of `hall` that met its call (`cache`: the hall's
    bands, the one of this bucket dropped)."""
    if not learned.zresid:
        learned.zresid = {}
    key = f"{hall}{SEP}{interval.bucket(forecast)}"
    z = residual(forecast, actual, spread[0], spread[1])
    push(learned.zresid.setdefault(key, []), z, interval.KEEP)
    cache.pop(key, None)


def ranged(
    learned: Learned,
    cache: dict[str, Band],
    hall: str,
    forecast: float,
    spread: Sequence[float],
    estimate: float,
) -> tuple[float, float]:
    """(p10, p90) of a forecast of `hall` whose runs spread over `spread` (see the module)."""
    key = f"{hall}{SEP}{interval.bucket(forecast)}"
    b = cache.get(key)
    if b is None:
        resid = learned.zresid.get(key) if learned.zresid else None
        b = cache[key] = band(resid, forecast)
    return bounds(b, forecast, spread[0], spread[1], estimate)
