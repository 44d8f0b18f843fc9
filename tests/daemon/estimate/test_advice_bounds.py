"""Staffing advice bounded by the hall (daemon/estimate/advice.py): never more windows than the
hall has and has not opened, none when nobody waits or the hall is about to close, and the
overrun when even all of them cannot clear the queue by closing."""

from __future__ import annotations

from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.estimate.advice import Advice, counters, share_out
from hallwatch.daemon.estimate.model import Estimator
from hallwatch.sensors.events import Event

from tests.factories import at, device_ev, issued, ticket_ev, window_ev

SERVICES = ("提取", "缴存")


def hall(now: float, *, open_: int, closed: int, waiting: int, terminals: int = 0) -> HallsState:
    """`open_` windows serving both services, `closed` known closed windows, `waiting` tickets
    issued over the last minutes, and `terminals` window terminals online."""
    s = HallsState()
    events: list[Event] = []
    for i in range(open_):
        events.append(window_ev(f"w{i:02d}", "open", now - 7200, SERVICES))
    for i in range(closed):
        events.append(window_ev(f"x{i:02d}", "closed", now - 7200, SERVICES))
    for i in range(terminals):
        events.append(device_ev(f"wt-{i:02d}", "online", now - 60, "window_terminal"))
    for i in range(waiting):
        events.append(issued(f"A{i:03d}", now - 600 + i, SERVICES[i % 2]))
    for ev in sorted(events, key=lambda e: e.ts):
        s.apply(ev)
    return s


def total(adv: Advice) -> int:
    return sum(sa.windows for sa in adv.services)


def test_never_more_windows_than_the_hall_has_not_opened() -> None:
    """8 windows open, 1 more known and 120 waiting: the need is far more than one window, the
    advice is that one, and the message's figure follows it."""
    now = at("2026-11-30T10:00")
    adv = Estimator(samples=0).advice(hall(now, open_=8, closed=1, waiting=120), "h1", now)
    assert adv.spare_windows == 1
    assert sum(max(sa.extra_backlog, sa.extra_arrivals) for sa in adv.services) > 1
    assert total(adv) == 1


def test_window_terminals_count_as_counters_the_hall_has() -> None:
    """A window terminal online whose window never reported is a counter that can be opened."""
    now = at("2026-11-30T10:00")
    s = hall(now, open_=2, closed=0, waiting=60, terminals=5)
    assert counters(s.halls["h1"]) == 5
    adv = Estimator(samples=0).advice(s, "h1", now)
    assert adv.spare_windows == 3 and 1 <= total(adv) <= 3


def test_no_windows_when_nobody_waits() -> None:
    """A busy morning whose queue is empty now: arrivals alone advise no window."""
    now = at("2026-11-30T10:00")
    s = hall(now, open_=2, closed=4, waiting=0)
    for i in range(60):  # 60 tickets in the last hour, all served
        t = now - 3600 + i * 55
        s.apply(issued(f"B{i:03d}", t, "提取"))
        s.apply(ticket_ev("called", f"B{i:03d}", t + 5, f"w{i % 2:02d}"))
        s.apply(ticket_ev("completed", f"B{i:03d}", t + 50, f"w{i % 2:02d}"))
    adv = Estimator(samples=0).advice(s, "h1", now)
    assert total(adv) == 0 and adv.all_open_overrun_s == 0.0


def test_no_windows_just_before_closing_but_the_overrun_stays() -> None:
    """At 16:58 with a queue: no window can open in time, none is advised; the queue still
    overruns closing time, which the advice keeps (extended hours)."""
    now = at("2026-11-30T16:58")
    adv = Estimator(samples=0).advice(hall(now, open_=1, closed=4, waiting=20), "h1", now)
    assert total(adv) == 0 and adv.closing_overrun_s > 0


def test_overrun_even_with_every_spare_window_open() -> None:
    """120 waiting at 15:30 with 2 open and 2 spare: even 4 windows cannot clear 120 tickets of
    ~5 minutes in 90 minutes, so all_open_overrun_s > 0; with 40 spare it clears."""
    now = at("2026-11-30T15:30")
    est = Estimator(samples=0, prior_patience_s=None)  # customers who wait
    few = est.advice(hall(now, open_=2, closed=2, waiting=120), "h1", now)
    assert total(few) == 2 and few.all_open_overrun_s > 0
    assert few.all_open_overrun_s < few.closing_overrun_s
    many = est.advice(hall(now, open_=2, closed=40, waiting=120), "h1", now)
    assert many.all_open_overrun_s == 0.0


def test_share_out_gives_spare_windows_to_the_largest_needs() -> None:
    """3 spare windows among needs 4 and 1: the larger need gets them first, none beyond a need."""
    assert share_out({"a": 4, "b": 1}, 3) == {"a": 3, "b": 0}
    assert share_out({"a": 2, "b": 2}, 3) == {"a": 2, "b": 1}
    assert share_out({"a": 1, "b": 0}, 5) == {"a": 1, "b": 0}
    assert share_out({"a": 3}, 0) == {"a": 0}
