"""The staffing advice's "clear by closing" and extended hours use each hall's own closing time
(`[hours]` through the estimator), not one closing for the centre."""

from __future__ import annotations

from datetime import time

from hallwatch.daemon.core.hours import Hours, Timetable
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.estimate.model import Estimator
from hallwatch.sensors.events import Event

from tests.factories import at, issued, window_ev


def two_halls(now: float) -> HallsState:
    """east and west alike: one window open since 08:00, 40 tickets waiting."""
    s = HallsState()
    events: list[Event] = []
    for hall in ("east", "west"):
        events.append(window_ev("w1", "open", now - 3 * 3600, ("提取",), hall=hall))
        events += [issued(f"A{i:03d}", now - 1200 + i, "提取", hall=hall) for i in range(40)]
    for ev in sorted(events, key=lambda e: e.ts):
        s.apply(ev)
    return s


def test_each_hall_is_advised_against_its_own_closing() -> None:
    """At 15:00 with the same queue, east (closing 16:00) needs longer past its closing than
    west (17:00) by the hour between them, and its closing_at is 16:00; a hall the timetable
    does not name closes at the centre's time."""
    now = at("2026-11-30T15:00")
    tt = Timetable(Hours(close=time(17, 0)), {"east": Hours(close=time(16, 0))})
    est = Estimator(samples=0, hours=tt, prior_patience_s=None)  # customers who wait
    state = two_halls(now)
    east, west = est.advice(state, "east", now), est.advice(state, "west", now)
    assert east.closing_at == at("2026-11-30T16:00")
    assert west.closing_at == at("2026-11-30T17:00")
    assert east.clear_at == west.clear_at and east.clear_at is not None
    assert west.closing_overrun_s > 0
    assert east.closing_overrun_s - west.closing_overrun_s == 3600.0
    assert Estimator(samples=0, closing="16:30", prior_patience_s=None).advice(
        state, "west", now
    ).closing_at == at("2026-11-30T16:30")
