"""Tests of the estimator during a business-system outage: staff on paper take longer."""

from __future__ import annotations

import pytest
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
