"""The overtaking arrivals projected into a ticket's future: along the hall's arrival curve, and
in full at a service only one window serves (issue #17, fifth round)."""

from __future__ import annotations

import datetime as dt

import pytest
from hallwatch.daemon.core.state import Day
from hallwatch.daemon.core.tickets import Ticket
from hallwatch.daemon.estimate.model import Estimator

from tests.daemon.estimate.test_estimate import T0, estimates, feed
from tests.factories import issued, ticket_ev, window_ev

HOUR = 3600.0


def _day(per_hour: list[tuple[int, int]]) -> Day:
    """A day of tickets, hour by hour before T0: (normal `gjj`, green `dk`) issued each hour,
    spread evenly; all of them served already (the rate counts every ticket issued)."""
    day = Day(day=dt.date(2026, 11, 26))
    start = T0 - len(per_hour) * HOUR
    for h, (normal, green) in enumerate(per_hour):
        for kind, n, service in (("normal", normal, "gjj"), ("green", green, "dk")):
            for i in range(n):
                at = start + h * HOUR + (i + 0.5) * HOUR / n
                key = f"{service}{h:02d}{i:03d}"
                day.tickets[key] = Ticket(service, kind, at, "completed")
    return day


def test_at_a_lone_window_the_overtaking_rate_follows_the_halls_arrival_curve() -> None:
    """A lone window's green rate rises with the hall's last hour; a shared one keeps the day's."""
    # Green `dk` tickets 2 an hour all day; the hall's arrivals tripled in the last hour.
    est = Estimator()
    serving = {"dk": 1, "gjj": 3}
    peak = est.overtaking_rates(_day([(10, 2)] * 5 + [(34, 2)]), T0, serving)
    assert peak[("dk", 0)] > 1.5 * est.rate_scale_lone * 12 / (6 * HOUR)
    assert peak[("gjj", 2)] == pytest.approx(est.rate_scale * 84 / (6 * HOUR), rel=0.02)
    flat = est.overtaking_rates(_day([(10, 2)] * 6), T0, serving)
    assert flat[("dk", 0)] == pytest.approx(est.rate_scale_lone * 12 / (6 * HOUR), rel=0.02)


def test_a_service_one_window_serves_projects_more_overtaking() -> None:
    """A service one window serves is projected `rate_scale_lone` of its rate, not `rate_scale`."""
    est = Estimator()
    day = _day([(10, 2)] * 6)
    shared = est.overtaking_rates(day, T0, {"dk": 3, "gjj": 3})
    lone = est.overtaking_rates(day, T0, {"dk": 1, "gjj": 3})
    assert est.rate_scale_lone > est.rate_scale
    ratio = est.rate_scale_lone / est.rate_scale
    assert lone[("dk", 0)] == pytest.approx(shared[("dk", 0)] * ratio, rel=0.02)
    assert lone[("gjj", 2)] == shared[("gjj", 2)]


def test_a_normal_ticket_at_a_lone_window_expects_the_green_ones_to_come() -> None:
    """Behind one at a lone window, a day of green customers makes the wait told 1.3x longer."""

    # One `dk` window, 10-minute services, two customers an hour since 09:00 (each served on
    # arrival), then N002 behind N001 and the one being served: no window is clear for it, so
    # the sampled runs (and their overtaking arrivals) decide its wait.
    def told(priority: str) -> float:
        est = Estimator()
        start = T0 - 5 * HOUR
        events = [window_ev("w1", "open", start - 60.0, services=("dk",))]
        for i in range(10):
            at = start + i * HOUR / 2
            events += [issued(f"G{i:03d}", at, service="dk", priority=priority)]
            events += [ticket_ev("called", f"G{i:03d}", at + 1.0, window="w1")]
            events += [ticket_ev("completed", f"G{i:03d}", at + 600.0, window="w1")]
        events += [issued("N000", T0 - 61.0, service="dk")]
        events += [ticket_ev("called", "N000", T0 - 60.0, window="w1")]
        events += [issued("N001", T0 - 30.0, service="dk"), issued("N002", T0, service="dk")]
        _, outs = feed(est, *events)
        out = [o for o in estimates(outs) if o.ticket == "N002"][-1]
        assert out.estimated_wait_s is not None
        return out.estimated_wait_s

    assert told("green") > 1.3 * told("normal")
