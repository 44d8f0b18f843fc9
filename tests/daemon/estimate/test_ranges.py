"""Tests of the ranges drawn from the simulation's own spread (estimate.ranges)."""

from __future__ import annotations

import math

from hallwatch.daemon.estimate import interval, ranges
from hallwatch.daemon.estimate.interval import Band
from hallwatch.daemon.estimate.learned import Learned
from hallwatch.daemon.estimate.model import EstimateOut, Estimator
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.daemon.estimate.test_estimate import T0, estimates, feed
from tests.factories import issued, ticket_ev, window_ev

z = st.floats(-5.0, 5.0)
secs = st.floats(0.0, 20000.0)


@settings(max_examples=300, deadline=None)
@given(z, z, secs, secs, secs, secs)
def test_the_range_holds_the_estimate(
    a: float, b: float, f: float, x: float, y: float, e: float
) -> None:
    """Whatever the band and the runs' spread, 0 <= p10 <= estimate <= p90."""
    band = Band(min(a, b), 0.0, max(a, b))
    lo, hi = ranges.bounds(band, f, min(x, y), max(x, y), e)
    assert 0.0 <= lo <= e <= hi


def test_a_calibrated_simulation_keeps_its_own_percentiles() -> None:
    """Spread residuals of -1 and +1 at the 10th and 90th percentiles give the runs' own
    10th and 90th percentiles (widened by C_S each side)."""
    lo, hi = ranges.bounds(Band(-1.0, 0.0, 1.0), 300.0, 200.0, 500.0, 300.0)
    assert lo == 300.0 - (100.0 + ranges.C_S)
    assert hi == 300.0 + (200.0 + ranges.C_S)


def _law_logs(median: float, sigma: float, n: int = 60) -> list[float]:
    """Log service times of mean log(median) and standard deviation `sigma`."""
    return [math.log(median) + sigma * (1 if i % 2 else -1) for i in range(n)]


def _first_in_line(sigma: float) -> EstimateOut:
    est = Estimator(learned=Learned(service_logs={"gjj": _law_logs(300.0, sigma)}))
    _, outs = feed(
        est,
        window_ev("w1", "open", T0 - 3600),
        window_ev("w2", "open", T0 - 3600),
        issued("A001", T0 - 200),
        issued("A002", T0 - 190),
        ticket_ev("called", "A001", T0 - 120, window="w1"),
        ticket_ev("called", "A002", T0 - 60, window="w2"),
        issued("A003", T0),
    )
    return estimates(outs)[-1]


def test_first_in_line_behind_uncertain_services_gets_a_wider_range() -> None:
    """First in line behind two busy windows, the wait is the shorter remaining service: a
    service law of log-sd 0.9 spreads it far more than one of 0.3, and the range says so
    (relative to the estimate), where a range drawn from the forecast alone would not."""
    wide, narrow = _first_in_line(0.9), _first_in_line(0.3)
    for o in (wide, narrow):
        assert o.position == 0 and o.estimated_wait_s and o.p10_s is not None and o.p90_s
    rel_wide = (wide.p90_s - wide.p10_s) / wide.estimated_wait_s  # type: ignore[operator]
    rel_narrow = (narrow.p90_s - narrow.p10_s) / narrow.estimated_wait_s  # type: ignore[operator]
    assert rel_wide > 1.5 * rel_narrow


def test_a_call_leaves_a_spread_residual_that_survives_a_restart() -> None:
    """A ticket forecast behind a busy window and called leaves one spread residual in its
    hall's bucket, of the sign of its miss; a restored estimator keeps it."""
    est = Estimator()
    feed(
        est,
        window_ev("w1", "open", T0 - 3600),
        issued("A001", T0 - 60),
        ticket_ev("called", "A001", T0 - 30, window="w1"),
        issued("A002", T0),
        ticket_ev("completed", "A001", T0 + 3000, window="w1"),
        ticket_ev("called", "A002", T0 + 3010, window="w1"),
    )
    assert est.learned.zresid
    [(key, resid)] = est.learned.zresid.items()
    assert key.startswith("h1\x1f") and len(resid) == 1 and resid[0] > 1.0
    assert not est.learned.spreads  # the pending spread is gone with its ticket
    assert Estimator.restore(est.snapshot()).learned.zresid == est.learned.zresid


def test_a_hall_whose_waits_ran_past_their_runs_gets_higher_ranges() -> None:
    """The same ticket in a hall whose waits met their call far above the runs' 90th
    percentile (spread residuals of 3) gets a p90 a third above a fresh hall's."""
    logs = {"gjj": _law_logs(300.0, 0.5)}
    late = {f"h1\x1f{b}": [3.0] * 200 for b in range(3)}
    events = (
        window_ev("w1", "open", T0 - 3600),
        issued("A001", T0 - 60),
        ticket_ev("called", "A001", T0 - 30, window="w1"),
        issued("A002", T0),
    )
    _, fresh = feed(Estimator(learned=Learned(service_logs=logs)), *events)
    _, taught = feed(Estimator(learned=Learned(service_logs=dict(logs), zresid=late)), *events)
    a, b = estimates(fresh)[-1], estimates(taught)[-1]
    assert a.estimated_wait_s == b.estimated_wait_s  # the estimate itself is not moved
    assert a.p90_s is not None and b.p90_s is not None and b.p90_s > 1.3 * a.p90_s


def test_a_cancelled_ticket_leaves_no_pending_spread() -> None:
    """A ticket forecast behind a busy window and then cancelled keeps nothing of its runs."""
    est = Estimator()
    state, _ = feed(
        est,
        window_ev("w1", "open", T0 - 3600),
        issued("A001", T0 - 60),
        ticket_ev("called", "A001", T0 - 30, window="w1"),
        issued("A002", T0),
    )
    assert est.learned.spreads and "h1\x1fA002" in est.learned.spreads
    feed(est, ticket_ev("cancelled", "A002", T0 + 60), state=state)
    assert not est.learned.spreads


def test_calls_within_the_minute_count_for_the_range_told_at_issue() -> None:
    """The range is told when the ticket is issued, before anyone knows whether it will be called
    at once: fifty tickets forecast at five minutes and called within the minute leave a spread
    residual each, and lower the next such forecast's range below a fresh hall's (kept from the
    waits of a minute or more only, the ranges held 0.70-0.78 of the tickets told to wait)."""
    spread = (200.0, 500.0)
    learned: Learned = Learned()
    cache: dict[str, Band] = {}
    for _ in range(50):
        ranges.learn(learned, cache, "h1", 300.0, 20.0, spread)
    assert learned.zresid and sum(map(len, learned.zresid.values())) == 50
    fresh = ranges.ranged(Learned(), {}, "h1", 300.0, spread, 300.0)
    assert ranges.ranged(learned, cache, "h1", 300.0, spread, 300.0)[0] < fresh[0]


def test_a_halls_few_spread_residuals_are_not_widened() -> None:
    """Twenty spread residuals from -1 to +1 give the hall's own 10th and 90th percentiles
    shrunk to the prior by their number, not moved away from their median first (the priors
    already cover a fresh hall's first, shorter waits)."""
    resid = [-1.0 + 2.0 * i / 19 for i in range(20)]
    prior = ranges.PRIORS[1]
    w = 20 / (20 + interval.PRIOR_WEIGHT)
    b = ranges.band(resid, 300.0)
    assert math.isclose(b.q10, w * -0.8 + (1 - w) * prior.q10)
    assert math.isclose(b.q90, w * 0.8 + (1 - w) * prior.q90)
