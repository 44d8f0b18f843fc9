"""P10-P90 ranges from the forward simulation's own spread, calibrated on what the daemon saw.

The sampled runs of a ticket's forecast already say how uncertain its wait is: first in line
behind two busy windows, the wait is the shorter of two remaining services and spreads wide;
tenth in line at six windows, it spreads little compared with its length. The runs' own 10th
and 90th percentiles (`lo`, `hi`; exact for a ticket first in line) are too narrow, though: the
simulation knows the hall's laws only as well as it learned them. So each forecast f that met
its call leaves a *spread residual*

    z = (actual - f) / (f - lo + C_S)  below f,    z = (actual - f) / (hi - f + C_S)  above,

kept per hall and size of forecast (`interval.bucket`), of the waits of a minute or more only
(`WAITED_S`, below). A calibrated simulation would give z10 = -1, z90 = +1; the hall's own 10th
and 90th percentiles of z, shrunk to the priors fitted on the development halls (not widened
while they are few, as `interval.spread` widens the scaled residuals: see `PRIORS`), give the
range

    [f + z10 (f - lo + C_S), f + z90 (hi - f + C_S)],

which always holds the published estimate (`interval` still gives that: the forecast and its
median correction). Measured on the development halls when it came (issue #17, fifth round), the
waits of a minute or more inside the range: 0.76-0.83 per family before, 0.78-0.84 after (cold;
warm 0.80-0.85 both);
the quiet family's cold 0.76 to 0.82, its first-in-line waits spreading more than the old fixed
share of the forecast allowed.
A forecast without runs (quick mode, a queue past the simulation budget) keeps `interval`'s range.

Only waits of a minute or more leave a spread residual: the range is for the customer who
waits (one called within the minute never reads it, and the coverage of issue #17 counts those
who waited a minute or more). With every call kept, the calls within the minute were the
lowest tenth of the residuals of forecasts under a minute, all of it, and 0.43 of the lowest
tenth of those under ten minutes (development halls): the hall's 10th percentile of z went with
them and the ranges reached too low for the customers who did wait (0.04-0.09 of them below the
range, 0.07-0.17 above), most of all where the hall's own percentiles counted most, after it
learned whole days (warm 0.81-0.87 inside, quiet 0.87). Kept from those waits only and taken
unwidened (sixth round): 0.78-0.83 inside per family fresh, 0.78-0.82 learned (quiet 0.80),
0.08-0.14 of the waits below the range and 0.06-0.13 above.
"""

from __future__ import annotations

from collections.abc import Sequence

from hallwatch.daemon.estimate import interval
from hallwatch.daemon.estimate.interval import Band
from hallwatch.daemon.estimate.learned import SEP, Learned, push

C_S = 30.0  # a forecast whose runs all agree still gets half a minute's width per side
WAITED_S = 60.0  # only the waits this long leave a spread residual (see the module)

#: The 10th and 90th percentiles of z of the waits of a minute or more on the development halls
#: (tests/harness/estimate_seeds.json, all families, fresh estimators' day 0 and learned ones'
#: three days), per bucket of forecast: (0.21, 1.50), (-0.56, 1.45), (-0.81, 1.87); the 10th at
#: most 0 (the range holds the forecast), the 90th widened by 1.15. A grid over the hall's
#: percentiles' widening while few (`interval.spread`: none to twice today's), the prior's
#: weight, C_S, the priors' source (fresh, pooled) and scale, replayed on the development
#: families' coverage, fresh and learned, put them here (docs/decisions.md, sixth round): the
#: hall's own percentiles unwidened, its first ones (early waits, shorter) covered by the wider
#: priors above. Widened as `interval.spread` widens them, the same ranges held 0.81-0.85 of the
#: waits (fresh) and 0.82-0.86 (learned), too wide.
PRIORS = (Band(0.0, 0.0, 1.72), Band(-0.56, 0.0, 1.67), Band(-0.81, 0.0, 2.15))


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
    """Keep the spread residual of a forecast of `hall` that met its call after a wait of a
    minute or more (`cache`: the hall's bands, the one of this bucket dropped)."""
    if actual < WAITED_S:
        return
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
