"""Tests of what the estimator learns when a ticket's events arrive out of order or twice."""

from __future__ import annotations

import math

import pytest
from hallwatch.daemon.estimate.model import Estimator
from hallwatch.sensors.events import Event

from tests.daemon.estimate.test_estimate import T0, feed
from tests.factories import issued, ticket_ev, window_ev


def services(n: int, dur: float, *, call_last: bool) -> list[Event]:
    """`n` tickets served `dur` seconds each at w1; with `call_last`, each ticket's `called`
    reaches the daemon after its `completed` (a terminal that sent late)."""
    events: list[Event] = [window_ev("w1", "open", T0)]
    for i in range(n):
        t = T0 + 10 + i * (dur + 20)
        call = ticket_ev("called", f"A{i:03d}", t, window="w1")
        end = ticket_ev("completed", f"A{i:03d}", t + dur, window="w1")
        events += [issued(f"A{i:03d}", t - 5), *((end, call) if call_last else (call, end))]
    return events


def test_a_late_call_after_the_completion_still_teaches_the_service_time() -> None:
    """Completions whose call arrives after them are learned as in order: the same
    service-time law, from the call to the end."""
    in_order, late = Estimator(samples=0), Estimator(samples=0)
    feed(in_order, *services(20, 600.0, call_last=False))
    feed(late, *services(20, 600.0, call_last=True))
    assert late.learned.service_logs == in_order.learned.service_logs
    assert late.learned.service_logs["gjj"] == [pytest.approx(math.log(600.0))] * 20


def test_a_second_completion_teaches_nothing() -> None:
    """A ticket's `completed` sent twice (another id, later) counts its service once, from its
    first end, not from the repeat."""
    est = Estimator(samples=0)
    feed(
        est,
        window_ev("w1", "open", T0),
        issued("A001", T0 + 1),
        ticket_ev("called", "A001", T0 + 10, window="w1"),
        ticket_ev("completed", "A001", T0 + 310, window="w1"),
        ticket_ev("completed", "A001", T0 + 900, window="w1"),
    )
    assert est.learned.service_logs["gjj"] == [pytest.approx(math.log(300.0))]
