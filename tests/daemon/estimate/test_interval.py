"""Tests of the P10-P90 ranges (estimate.interval) and the re-estimates (estimate.reestimate)."""

from __future__ import annotations

import pytest
from hallwatch.daemon.estimate import interval
from hallwatch.daemon.estimate.learned import Learned
from hallwatch.daemon.estimate.model import EstimateOut, Estimator
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.daemon.estimate.test_estimate import T0, estimates, feed
from tests.factories import issued, ticket_ev, window_ev

residuals = st.lists(st.floats(-1.0, 5.0), max_size=300)


@settings(max_examples=200, deadline=None)
@given(residuals, st.floats(0.0, 20000.0))
def test_the_range_holds_the_estimate(resid: list[float], forecast: float) -> None:
    """Whatever the hall's past residuals, p10 <= estimate <= p90, none negative."""
    est, lo, hi = interval.band(resid, interval.PRIORS[interval.bucket(forecast)]).apply(forecast)
    assert 0.0 <= lo <= est <= hi


@settings(max_examples=100, deadline=None)
@given(residuals, st.floats(60.0, 5000.0), st.floats(1.0, 5000.0))
def test_a_longer_forecast_gets_a_wider_range(resid: list[float], f: float, more: float) -> None:
    """In the same bucket, a longer forecast is less certain in seconds: its range is wider."""
    if interval.bucket(f) != interval.bucket(f + more):
        return
    b = interval.band(resid, interval.PRIORS[interval.bucket(f)])
    _, lo1, hi1 = b.apply(f)
    _, lo2, hi2 = b.apply(f + more)
    assert hi2 - lo2 > hi1 - lo1


def test_a_hall_whose_forecasts_miss_more_gets_wider_ranges() -> None:
    """Residuals spread twice as wide give a wider range than the prior's, narrow ones a
    narrower range; and each range is about the 10th-90th percentile once data dominate."""
    wide = [(-1) ** i * 0.8 * (i % 10) / 10 for i in range(300)]
    narrow = [x / 8 for x in wide]
    prior = interval.PRIORS[2]

    def width(resid: list[float] | None) -> float:
        _, lo, hi = interval.band(resid, prior).apply(1000.0)
        return hi - lo

    assert width(narrow) < width(None) < width(wide)


def test_the_median_correction_follows_what_the_hall_saw() -> None:
    """A hall whose long forecasts all met their call late (residual +1: twice the forecast
    and a bit) gets larger estimates for the same forecast, its range moving with it."""
    resid = {"h1\x1f2": [1.0] * 200}
    later = Estimator(learned=Learned(resid=resid)).calibrated("h1", 1200.0)
    before = Estimator(samples=0).calibrated("h1", 1200.0)
    assert later[0] is not None and before[0] is not None
    assert later[0] > 1.5 * before[0]
    assert later[1] is not None and later[2] is not None and later[1] <= later[0] <= later[2]


def test_a_ticket_is_re_estimated_when_its_window_pauses() -> None:
    """Six tickets at one window; the window pauses: at the next call elsewhere the tickets
    behind get a new estimate (revision 1), later than the first and counted from then."""
    est = Estimator(samples=0, reestimate_every_s=0.0)
    ev = [
        window_ev("w1", "open", T0, services=("gjj",)),
        window_ev("w2", "open", T0, services=("gjj",)),
    ]
    ev += [issued(f"A{i:03d}", T0 + 1 + i) for i in range(8)]
    ev += [ticket_ev("called", "A000", T0 + 20, window="w1")]
    ev += [ticket_ev("called", "A001", T0 + 21, window="w2")]
    state, outs = feed(est, *ev)
    first = {o.ticket: o for o in estimates(outs) if o.revision == 0}
    assert set(first) == {f"A{i:03d}" for i in range(8)}
    _, outs = feed(
        est,
        window_ev("w2", "paused", T0 + 30, services=("gjj",)),
        ticket_ev("completed", "A000", T0 + 300, window="w1"),
        ticket_ev("called", "A002", T0 + 310, window="w1"),
        state=state,
    )
    again = [o for o in estimates(outs) if o.revision > 0]
    assert again, "the pause moved the forecasts of the tickets behind"
    for o in again:
        assert o.revision == 1 and o.at == T0 + 310
        assert o.at + (o.estimated_wait_s or 0) > first[o.ticket].at + (
            first[o.ticket].estimated_wait_s or 0
        )
        assert o.p10_s is not None and o.p90_s is not None
        assert o.p10_s <= (o.estimated_wait_s or 0) <= o.p90_s


def test_no_re_estimate_while_the_queue_moves_as_forecast() -> None:
    """Calls exactly as forecast move nothing: no second message for anyone."""
    est = Estimator(samples=0, reestimate_every_s=0.0)
    ev = [window_ev("w1", "open", T0, services=("gjj",))]
    ev += [issued(f"A{i:03d}", T0 + 1 + i) for i in range(4)]
    ev += [ticket_ev("called", "A000", T0 + 10, window="w1")]
    _, outs = feed(est, *ev)
    assert not [o for o in estimates(outs) if isinstance(o, EstimateOut) and o.revision]


def test_a_halls_own_residuals_are_widened_around_their_median() -> None:
    """The waits already called are the better forecast ones: a hall's learned 10th-90th
    percentiles are moved away from the median by `spread`, less as residuals accumulate."""
    resid = [i / 100 - 0.5 for i in range(101)]  # 10th, 50th, 90th percentiles: -0.4, 0, 0.4
    neutral = interval.Band(0.0, 0.0, 0.0)
    b = interval.band(resid, neutral)
    w = len(resid) / (len(resid) + interval.PRIOR_WEIGHT)
    assert b.q50 == 0.0
    assert b.q90 == pytest.approx(-b.q10) == pytest.approx(w * interval.spread(101) * 0.4)
    assert b.q90 > 1.1 * w * 0.4
    assert interval.spread(10) > interval.spread(100) > interval.spread(300) > 1.0


def test_a_zero_forecast_gets_the_short_fixed_range() -> None:
    """A ticket a free window calls at once: estimate 0, range 0 to ZERO's width."""
    est = Estimator(learned=Learned(resid={"h1\x1f0": [3.0] * 100}))
    assert est.calibrated("h1", 0.0) == (0.0, 0.0, interval.ZERO.q90 * interval.SCALE_S)


def test_the_median_correction_is_shrunk_by_how_noisy_the_halls_residuals_are() -> None:
    """Two halls whose past forecasts met their call 20% late in the median: the one whose
    residuals scatter tightly around that gets nearly all of the correction, the one whose
    residuals scatter widely (a quiet hall's) much less, and no correction without a median."""
    tight = [0.2 + 0.01 * (i * 8 % 21 - 10) for i in range(40)]  # in no order: not in runs
    wide = [0.2 + 0.15 * (i * 8 % 21 - 10) for i in range(40)]
    prior = interval.Band(-0.2, 0.0, 0.5)
    w = 40 / (40 + interval.PRIOR_WEIGHT)
    assert interval.band(tight, prior).q50 == pytest.approx(w * 0.2, rel=0.05)
    assert interval.band(wide, prior).q50 < 0.5 * w * 0.2
    assert interval.band([-1.0, 0.0, 1.0], prior).q50 == 0.0


def test_residuals_that_miss_in_runs_correct_less_than_the_same_ones_scattered() -> None:
    """The same residuals, in call order once in two runs (the waits behind one long service
    all late, then the rest) and once alternating: the runs count as fewer independent misses,
    so their median correction is shrunk harder; in alternating order it is not shrunk more."""
    late, early = [0.6 + 0.01 * i for i in range(20)], [-0.3 - 0.01 * i for i in range(12)]
    alternating = [x for pair in zip(late, early, strict=False) for x in pair] + late[12:]
    prior = interval.Band(-0.2, 0.0, 0.5)
    runs = interval.band(late + early, prior).q50
    scattered = interval.band(alternating, prior).q50
    w, mid = 32 / (32 + interval.PRIOR_WEIGHT), (late[3] + late[4]) / 2
    assert scattered > 0.85 * w * mid  # nearly the whole correction, as before
    assert 0.0 < runs < 0.8 * scattered


def test_long_forecasts_need_more_evidence_for_their_median_correction() -> None:
    """A hall whose forecasts of ten minutes or more met their call late as often, and by as
    much, as its forecasts of one to ten minutes gets a smaller correction on the long ones:
    a long wait's residuals are fewer independent misses (several waits behind one service)."""
    xs = [0.25 + 0.08 * (i % 21 - 10) for i in range(40)]
    est = Estimator(learned=Learned(resid={"h1\x1f1": list(xs), "h1\x1f2": list(xs)}))
    q50 = {}
    for f in (300.0, 900.0):
        e, _lo, _hi = est.calibrated("h1", f)
        q50[f] = (e - f) / (f + interval.SCALE_S)
    assert 0.0 < q50[900.0] < 0.9 * q50[300.0]


def _correction(est: Estimator, f: float, outage: bool = False) -> float:
    e, _lo, _hi = est.calibrated("h1", f, outage)
    assert e is not None
    return (e - f) / (f + interval.SCALE_S)


def test_two_bursts_of_misses_weigh_less_against_the_prior_than_the_same_misses_scattered() -> None:
    """Sixty residuals all late, tightly, in two bursts (thirty later, then thirty less late)
    weigh as the few independent misses they are against the prior of no correction: under
    half the correction of the same residuals alternating (before: both nearly all of it)."""
    later, less = [0.40 + 0.001 * i for i in range(30)], [0.30 + 0.001 * i for i in range(30)]
    alternating = [x for pair in zip(later, less, strict=True) for x in pair]
    bursts = Estimator(learned=Learned(resid={"h1\x1f1": later + less}))
    scattered = Estimator(learned=Learned(resid={"h1\x1f1": alternating}))
    assert 0.0 < _correction(bursts, 300.0) < 0.5 * _correction(scattered, 300.0)


def test_an_outages_burst_of_misses_keeps_its_weight_against_the_ordinary_band() -> None:
    """The same two bursts kept as an outage's residuals (one burst by construction) keep the
    weight of their number against the hall's ordinary band: more than twice the correction
    they get as ordinary residuals."""
    later, less = [0.40 + 0.001 * i for i in range(30)], [0.30 + 0.001 * i for i in range(30)]
    ordinary = Estimator(learned=Learned(resid={"h1\x1f1": later + less}))
    outage = Estimator(learned=Learned(resid={"h1\x1fo1": later + less}))
    assert _correction(outage, 300.0, outage=True) > 2.0 * _correction(ordinary, 300.0) > 0.0


def test_tight_scattered_misses_of_long_forecasts_keep_the_weight_of_their_number() -> None:
    """Forty residuals of forecasts of ten minutes or more, tightly late and in no runs, weigh
    as forty against the prior: `EVIDENCE` asks more of their median's significance, not of
    its weight (nearly the whole n / (n + PRIOR_WEIGHT) of the correction)."""
    xs = [0.30 + 0.002 * (i * 8 % 21 - 10) for i in range(40)]
    est = Estimator(learned=Learned(resid={"h1\x1f2": xs}))
    w = 40 / (40 + interval.PRIOR_WEIGHT)
    assert _correction(est, 900.0) > 0.9 * w * 0.30
