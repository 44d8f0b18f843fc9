"""The hall's lunch rotation (`[hours]`) in the forward simulation: a window away for lunch in
[start, end) calls nobody then (it finishes the customer it serves), and a window paused in its
turn is back at the turn's end."""

from __future__ import annotations

from datetime import time

import pytest
from hallwatch.daemon.core.hours import Hours, Lunch, Timetable
from hallwatch.daemon.core.state import Day
from hallwatch.daemon.estimate.model import Estimator

from tests.daemon.estimate.test_estimate import HANDLING, PATIENT, estimates, feed
from tests.factories import at, issued, ticket_ev, window_ev

NOW = at("2026-11-26T11:30")
# The only 公积金 (gjj) window of h1 goes to lunch in five minutes, for an hour.
LUNCH = Timetable(Hours(), {"h1": Hours(lunch=(Lunch("w1", time(11, 35), time(12, 35)),))})
TURN_END = at("2026-11-26T12:35")


def queue_of_four(est: Estimator) -> float | None:
    """w1 open and idle, four tickets issued at 11:30: the last one's estimate."""
    _, outs = feed(
        est,
        window_ev("w1", "open", NOW - 3600),
        *[issued(f"A{i:03d}", NOW) for i in range(1, 5)],
    )
    return estimates(outs)[-1].estimated_wait_s


def test_the_last_ticket_behind_a_window_going_to_lunch_waits_for_the_lunch() -> None:
    """Four tickets at the lone window at 11:30: A001 and A002 are called before 11:35, so A003
    and A004 wait for the turn's end (12:35), and A004 one service more; without the rotation
    the estimate is three services."""
    est = Estimator(samples=0, hours=LUNCH, **PATIENT)
    assert queue_of_four(est) == pytest.approx(TURN_END - NOW + HANDLING)
    assert queue_of_four(Estimator(samples=0, **PATIENT)) == pytest.approx(3 * HANDLING)


def test_sampled_estimates_include_the_lunch_too() -> None:
    """The sampled median of the last ticket lies past the turn's end (without it: ~15 min)."""
    est = Estimator(hours=LUNCH, **PATIENT)
    _, outs = feed(
        est,
        window_ev("w1", "open", NOW - 3600),
        *[issued(f"A{i:03d}", NOW) for i in range(1, 5)],
    )
    last = estimates(outs)[-1]
    assert last.estimated_wait_s is not None and last.estimated_wait_s > TURN_END - NOW


def test_first_in_line_behind_a_customer_in_service_waits_for_the_turn() -> None:
    """w1 serves a customer from 11:29 and goes to lunch at 11:31 (to 12:31): the next call,
    most likely due after 11:31, falls in the turn, so the ticket first in line is called at
    12:31 (the exact first-in-line quantile honours the turn as the runs do)."""
    soon = Timetable(Hours(), {"h1": Hours(lunch=(Lunch("w1", time(11, 31), time(12, 31)),))})
    est = Estimator(hours=soon, **PATIENT)
    _, outs = feed(
        est,
        window_ev("w1", "open", NOW - 3600),
        issued("A001", NOW - 120),
        ticket_ev("called", "A001", NOW - 60, window="w1"),
        issued("A002", NOW),
    )
    last = estimates(outs)[-1]
    assert last.estimated_wait_s is not None
    assert 3660.0 <= last.estimated_wait_s < 3720.0


def test_a_window_paused_in_its_turn_is_back_at_the_turn_end() -> None:
    """w1 paused at 11:35 for its turn: at 12:00 the simulation has it back at 12:35 (calling
    nobody before), not after a usual pause's residual."""
    now = at("2026-11-26T12:00")
    events = (window_ev("w1", "open", NOW - 3600), window_ev("w1", "paused", NOW + 300))
    for hours, back in ((LUNCH, TURN_END), (None, None)):
        est = Estimator(samples=0, hours=hours, **PATIENT)
        state, _ = feed(est, *events)
        (win,) = est.windows_at("h1", state.halls["h1"], Day(day=state.business_day(now)), now)
        if back is not None:
            assert win.free == back and win.law is None
        else:
            assert win.law is not None and win.free < TURN_END


def test_first_in_line_across_a_turn_counts_the_overtaking_arrivals() -> None:
    """First in line at a lone window going to lunch, greens arriving: waits past the turn."""
    # Greens came all morning (one every 10 min): those arriving in the hour are called first
    # at the turn's end; the exact first-in-line bound (the turn's end) leaves them out.
    soon = Timetable(Hours(), {"h1": Hours(lunch=(Lunch("w1", time(11, 31), time(12, 31)),))})
    morning = at("2026-11-26T09:00")
    greens = []
    for i in range(15):  # 09:00-11:20, each served at once for 5 min
        t = morning + 600.0 * i
        greens += [
            issued(f"G{i:03d}", t, priority="green"),
            ticket_ev("called", f"G{i:03d}", t + 1, window="w1"),
            ticket_ev("completed", f"G{i:03d}", t + 301, window="w1"),
        ]
    events = (
        window_ev("w1", "open", morning - 60),
        *greens,
        issued("A001", NOW - 120),
        ticket_ev("called", "A001", NOW - 60, window="w1"),
        issued("A002", NOW),
    )
    # With the turn: its end (3660 s) plus the greens that came meanwhile, about six of them
    # at the morning's rate (one every 560 s, at a lone window the full rate), and those
    # arriving while they are served (utilisation about 0.5): some 3,000-4,000 s more.
    for hours, low, high in ((soon, 3720.0, 9000.0), (None, 0.0, 3660.0)):
        est = Estimator(hours=hours, **PATIENT)
        _, outs = feed(est, *events)
        last = estimates(outs)[-1]
        assert last.estimated_wait_s is not None and low < last.estimated_wait_s < high
