"""The hall view the rules read (daemon/pipeline/views.py): endured waits and uncovered services
come from the state (tickets issued, not yet called; windows open or not)."""

from __future__ import annotations

import json

from hallwatch.alerts.view import HallView
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.pipeline.process import Faults, Pipeline
from hallwatch.daemon.pipeline.views import QueueMemo, hall_view, queue_of
from hallwatch.sensors.events import Event
from hallwatch.sensors.parse import parse
from hallwatch.sensors.profiles import PROFILES
from hallwatch.sensors.simulator import simulate_day

from tests.factories import at, issued, ticket_ev, window_ev

T = at("2026-11-26T11:00")  # a Thursday


def state_of(*events: Event) -> HallsState:
    s = HallsState()
    for ev in events:
        s.apply(ev)
    return s


def view_at(s: HallsState, now: float) -> HallView:
    return hall_view(s, "h1", now, advice=None, heartbeat_timeout_s=90.0, calendar=WorkCalendar())


def lunch_day() -> HallsState:
    """One loan window and one withdrawal window; the loan window pauses at 11:30 and loan
    customers take tickets from 11:35; one loan ticket was called before the pause."""
    return state_of(
        window_ev("w1", "open", T - 7200, ("loan",)),
        window_ev("w2", "open", T - 7200, ("withdrawal",)),
        issued("C001", T + 60, "loan"),
        ticket_ev("called", "C001", T + 120, "w1"),
        ticket_ev("completed", "C001", T + 1700, "w1"),
        window_ev("w1", "paused", T + 1800, ("loan",)),
        issued("C002", T + 2100, "loan"),
        issued("C003", T + 2400, "loan"),
        issued("A001", T + 2500, "withdrawal"),
    )


def test_endured_wait_is_the_longest_wait_of_anyone_still_waiting() -> None:
    """At 12:00 the first loan customer still waiting (11:35) has waited 25 minutes; a called
    ticket no longer counts; withdrawal's own longest wait is separate."""
    v = view_at(lunch_day(), T + 3600)
    assert v.endured_s_by_service == {"loan": 1500.0, "withdrawal": 1100.0}
    assert v.waiting_by_service == {"loan": 2, "withdrawal": 1}


def test_uncovered_since_the_later_of_the_pause_and_the_first_wait() -> None:
    """Loan is uncovered from 11:35 (first waiting ticket after the 11:30 pause); withdrawal,
    served by an open window, is not; a ticket waiting before the pause counts from the pause."""
    s = lunch_day()
    assert view_at(s, T + 3600).uncovered_since == {"loan": T + 2100}
    s.apply(issued("C000", T + 1000, "loan"))  # waiting since 11:16, before the pause
    assert view_at(s, T + 3600).uncovered_since == {"loan": T + 1800}


def test_opening_a_window_for_the_service_covers_it() -> None:
    """The loan window back at 13:30: loan is covered again, its endured wait still shows."""
    s = lunch_day()
    s.apply(window_ev("w1", "open", T + 9000, ("loan",)))
    v = view_at(s, T + 9060)
    assert v.uncovered_since == {} and v.endured_s_by_service["loan"] == 9060 - 2100


def test_a_transfer_waits_anew_and_an_empty_queue_is_not_uncovered() -> None:
    """A transferred ticket's endured wait counts from its transfer; a service no one waits for
    is never uncovered, open window or not."""
    s = state_of(
        window_ev("w2", "open", T - 7200, ("withdrawal",)),
        issued("A001", T, "withdrawal"),
        ticket_ev("called", "A001", T + 60, "w2"),
        ticket_ev("transferred", "A001", T + 600, service="loan"),
    )
    v = view_at(s, T + 900)
    assert v.endured_s_by_service == {"loan": 300.0} and v.uncovered_since == {"loan": T + 600}
    s.apply(ticket_ev("cancelled", "A001", T + 950))
    assert view_at(s, T + 1000).uncovered_since == {}


def test_the_tick_is_due_when_a_wait_endured_or_a_gap_reaches_its_mark() -> None:
    """With no event to come, the schedule names the instant the lunch gap's loan customers have
    waited uncovered for the rule's after_s (C002 from 11:35, +600 s) and, once covered, the
    instant the longest wait reaches the peak's 20 minutes: exact, not at the next sweep."""
    from zoneinfo import ZoneInfo

    from hallwatch.daemon.config.alerts import HallRules
    from hallwatch.daemon.pipeline.schedule import next_due

    s = lunch_day()
    hall, rules, zone = s.halls["h1"], HallRules(), ZoneInfo("Asia/Shanghai")
    now = T + 2600
    assert next_due(hall, s.day_at(hall, now), now, rules, zone, 90.0) == T + 2100 + 600
    s.apply(window_ev("w1", "open", T + 2650, ("loan",)))
    now = T + 2700
    assert next_due(hall, s.day_at(hall, now), now, rules, zone, 90.0) == T + 2100 + 1200


def test_the_kept_queue_is_the_queue_of_the_state_as_it_stands() -> None:
    """A simulated peak day through the pipeline (which bumps each hall's version): after every
    event the memo's queue equals one walked afresh, and is kept (not walked) while nothing
    changed, so a quiet hall's sweep costs no walk of its tickets."""
    profile = PROFILES["peak"]
    day = simulate_day(profile, 3)
    state = HallsState()
    pipe = Pipeline(lambda: state, lambda _ev: None, Faults(lambda: 0.0))
    memo = QueueMemo()
    seen = 0
    for m in day.messages:
        ev = parse(m.topic, json.dumps(m.payload).encode())
        assert isinstance(ev, Event)
        pipe.process(ev)
        hall = state.halls[ev.hall]
        today = hall.today
        if today is None:
            continue
        version = pipe.changes.version.get(ev.hall)
        kept = memo.get(ev.hall, today, version)
        assert kept == queue_of(today)
        assert memo.get(ev.hall, today, version) is kept
        seen += bool(kept.waiting)
    assert seen > 100  # the day had a queue most of the time
