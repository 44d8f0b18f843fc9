"""Tests of the median correction around a business-system outage (estimate.interval `key`)."""

from __future__ import annotations

import pytest
from hallwatch.daemon.estimate.learned import SEP
from hallwatch.daemon.estimate.model import Estimator
from hallwatch.sensors.events import Event

from tests.daemon.estimate.test_estimate import T0, estimates, feed
from tests.factories import issued, system_ev, ticket_ev, window_ev

BACK = T0 + 100 + 10 * 900  # the core system is back after the last late call


def late_outage() -> list[Event]:
    """Ten tickets at one window while the core system is down, each called three times later
    than a service's mean after the one before (their forecasts all far too short)."""
    ev: list[Event] = [window_ev("w1", "open", T0 - 60), system_ev("core", "down", T0)]
    ev += [issued(f"A{i:03d}", T0 + 10 + i) for i in range(10)]
    for i in range(10):
        ev += [
            ticket_ev("called", f"A{i:03d}", T0 + 100 + i * 900, window="w1"),
            ticket_ev("completed", f"A{i:03d}", T0 + 100 + i * 900 + 300, window="w1"),
        ]
    return [*ev, system_ev("core", "up", BACK)]


def corrected(delay: float) -> tuple[float, float]:
    """(estimate, simulation's forecast) of the last of four tickets issued `delay` s after the
    outage of `late_outage` ended."""
    est = Estimator(samples=0)
    t = BACK + delay
    _, outs = feed(est, *late_outage(), *[issued(f"B{i:03d}", t + i) for i in range(4)])
    last = estimates(outs)[-1]
    assert last.ticket == "B003" and last.estimated_wait_s is not None
    forecasts = est.learned.forecasts or {}
    return last.estimated_wait_s, forecasts[f"h1{SEP}B003"]


def test_waits_long_through_an_outage_do_not_lengthen_the_afternoons_estimates() -> None:
    """Two hours after the outage, a hall whose outage waits all ran long of their forecasts
    estimates as one that learned nothing: the simulation's forecast, uncorrected."""
    estimate, forecast = corrected(7200.0)
    assert forecast > 0.0
    assert estimate == pytest.approx(forecast)


def test_the_outages_backlog_is_corrected_by_the_outages_waits() -> None:
    """Ten minutes after the outage (its backlog), the same hall's estimates are lengthened by
    what its outage waits taught."""
    estimate, forecast = corrected(600.0)
    assert estimate > 1.2 * forecast > 0.0
