"""Tests of the estimator during a business-system outage: staff on paper take longer."""

from __future__ import annotations

import msgspec
import pytest
from hallwatch.daemon.estimate.forecast import outage_end
from hallwatch.daemon.estimate.model import Estimator
from hallwatch.sensors.events import Event

from tests.daemon.estimate.test_estimate import T0, estimates, feed
from tests.factories import issued, system_ev, ticket_ev, window_ev


def served(est: Estimator, start: float, n: int, dur: float, *before: Event) -> list[Event]:
    """`n` tickets called and completed one after the other at w1, `dur` seconds each."""
    events: list[Event] = [window_ev("w1", "open", T0), *before]
    for i in range(n):
        t = start + i * (dur + 5)
        events += [
            issued(f"S{i:03d}", t - 1),
            ticket_ev("called", f"S{i:03d}", t, window="w1"),
            ticket_ev("completed", f"S{i:03d}", t + dur, window="w1"),
        ]
    return events


def test_services_during_an_outage_teach_the_slow_down_not_the_law() -> None:
    """Services twice as long while the core system is down leave the service law as it was
    and move the slow-down factor towards 2."""
    est = Estimator(samples=0)
    feed(est, *served(est, T0 + 10, 30, 300.0))
    usual = est.law("gjj").mean
    feed(
        est,
        *served(est, T0 + 20000, 30, 600.0, system_ev("core", "down", T0 + 19000)),
    )
    assert est.law("gjj").mean == pytest.approx(usual)
    assert 1.7 < est.slow_factor < 2.0


def test_an_estimate_while_the_system_is_down_is_longer() -> None:
    """The same queue: six ahead at one window take longer to clear while the core system is
    down than while it is up."""

    def estimate(state: str) -> float:
        est = Estimator(samples=0)
        ev: list[Event] = [window_ev("w1", "open", T0), system_ev("core", state, T0 + 1)]
        ev += [issued(f"A{i:03d}", T0 + 10 + i) for i in range(7)]
        _, outs = feed(est, *ev)
        wait = estimates(outs)[-1].estimated_wait_s
        assert wait is not None
        return wait

    up, down = estimate("up"), estimate("down")
    assert down > 1.2 * up


def test_the_hall_learns_how_long_its_outages_last() -> None:
    """Two outages of 80 minutes move the expected outage length from the prior's towards
    80 minutes; an `up` without a `down` before it teaches nothing."""
    est = Estimator(samples=0)
    prior = est.outage_law.mean
    feed(est, system_ev("core", "up", T0 - 100))
    assert est.learned.outages is msgspec.UNSET or not est.learned.outages
    for day in range(2):
        t = T0 + day * 86400
        feed(est, system_ev("core", "down", t), system_ev("core", "up", t + 4800))
    assert est.learned.outages == [4800.0, 4800.0]
    assert prior < est.outage_law.mean and abs(est.outage_law.mean - 4800) < abs(prior - 4800)
    again = Estimator.restore(est.snapshot())
    assert again.outage_law.mean == pytest.approx(est.outage_law.mean)


def test_an_outage_is_expected_to_last_as_long_as_the_halls_past_ones() -> None:
    """Before any outage ended, one is expected back half an hour after it went down, never
    sooner than ten minutes from now; after two of 80 minutes, well past half an hour (the
    median of the hall's, shrunk to the prior's by two pseudo-outages)."""
    fresh, learned = Estimator(samples=0), Estimator(samples=0)
    for day in (2, 1):
        t = T0 - day * 86400
        feed(learned, system_ev("core", "down", t), system_ev("core", "up", t + 4800))
    hall = feed(fresh, system_ev("core", "down", T0))[0].halls["h1"]
    assert outage_end(hall, T0 + 60, fresh.outage_law) == pytest.approx(T0 + 1800)
    assert outage_end(hall, T0 + 3000, fresh.outage_law) == pytest.approx(T0 + 3600)
    end = outage_end(hall, T0 + 60, learned.outage_law)
    assert end is not None and T0 + 2700 < end < T0 + 4800
