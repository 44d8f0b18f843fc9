"""The no-show curve: fitted over all ages of call, and a prior patience before any is learned."""

from __future__ import annotations

import pytest
from hallwatch.daemon.estimate.learned import Learned
from hallwatch.daemon.estimate.model import Estimator

from tests.daemon.estimate.test_estimate import T0, estimates, feed
from tests.factories import issued, ticket_ev, window_ev

# A development hall's day (outage family, one window for its longest service): calls per
# 5-minute bin of wait, [called, of which no-shows]. Few tickets waited over 40 minutes, and
# most of those were no-shows.
AFTER_AN_OUTAGE = [[179, 0], [14, 1], [11, 2], [4, 2], [5, 1], [0, 0], [2, 1], [5, 1], [5, 4]]
AFTER_AN_OUTAGE += [[4, 3], [3, 2], [5, 4], [2, 0], [1, 1], [1, 1], [0, 0], [1, 1], [0, 0]]
AFTER_AN_OUTAGE += [[0, 0]] * 4 + [[1, 1], [0, 0], [4, 4]] + [[0, 0]] * 5


def test_sparse_long_waits_that_were_no_shows_steepen_the_curve() -> None:
    """Tickets called after 40 minutes were mostly no-shows, though few: the curve says so at
    two hours (over 0.6), where shrinking each bin to the day's share said one in four."""
    est = Estimator(learned=Learned(age_bins=AFTER_AN_OUTAGE), prior_patience_s=None)
    assert est.no_show_p(300.0) < 0.15
    assert est.no_show_p(7200.0) > 0.6
    ages = [60.0 * m for m in range(0, 150, 5)]
    curve = [est.no_show_p(a) for a in ages]
    assert curve == sorted(curve)


def test_a_fresh_estimator_expects_long_waiters_to_have_left() -> None:
    """Before anything is learned, a ticket called after two hours is more likely a no-show than
    not, one called after five minutes hardly ever; without the prior patience, 1 in 20 at
    any age."""
    est = Estimator()
    assert est.no_show_p(300.0) < 0.05 and est.no_show_p(7200.0) > 0.6
    flat = Estimator(prior_patience_s=None)
    assert flat.no_show_p(300.0) == pytest.approx(0.05) == flat.no_show_p(7200.0)


def test_a_queue_of_old_tickets_is_forecast_shorter_than_one_of_new() -> None:
    """Ten tickets waiting two hours already at one busy window: most will be recalled no-shows,
    so the ticket behind them is forecast a shorter wait than behind ten fresh tickets."""

    def wait_behind(age: float) -> float:
        est = Estimator(samples=0)
        events = [window_ev("w1", "open", T0 - 9000)]
        events += [issued(f"A{i:03d}", T0 - age + i) for i in range(10)]
        events += [issued("B001", T0)]
        _, outs = feed(est, *events)
        out = [o for o in estimates(outs) if o.ticket == "B001"][-1]
        assert out.estimated_wait_s is not None
        return out.estimated_wait_s

    assert wait_behind(7200.0) < 0.6 * wait_behind(60.0)


def test_the_estimator_takes_no_patience_it_cannot_use() -> None:
    """A prior patience of 0 is refused with a clear error."""
    with pytest.raises(ValueError, match="prior_patience_s"):
        Estimator(prior_patience_s=0.0)


def test_tickets_called_at_once_leave_the_short_range_as_it_was() -> None:
    """A hundred tickets called the second they were issued (zero forecasts, zero waits) keep no
    residual: a 30-second forecast still gets the prior's range, not one shrunk to a point."""
    est = Estimator(samples=0)
    events = [window_ev("w1", "open", T0 - 60)]
    for i in range(100):
        t = T0 + 100.0 * i
        events += [issued(f"A{i:03d}", t), ticket_ev("called", f"A{i:03d}", t, window="w1")]
        events += [ticket_ev("completed", f"A{i:03d}", t + 50.0, window="w1")]
    _, outs = feed(est, *events)
    assert {o.estimated_wait_s for o in estimates(outs)} == {0.0}
    assert not est.learned.resid
    assert est.calibrated("h1", 30.0) == Estimator(samples=0).calibrated("h1", 30.0)
    _, lo, hi = est.calibrated("h1", 30.0)
    assert lo is not None and hi is not None and hi - lo > 60.0
