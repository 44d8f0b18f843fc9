"""Tests of hallwatch.daemon.core.state: the pure hall core, driven by events and event time
(snapshots, invariants and caps: test_state_invariants.py)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from hallwatch.daemon.core.state import (
    CALLED,
    CANCELLED,
    COMPLETED,
    NO_SHOW,
    WAITING,
    encode,
    waiting_counts,
    waiting_tickets,
)

from tests.daemon.core.state_helpers import T0, run, today
from tests.factories import (
    at,
    complaint_ev,
    device_ev,
    door_ev,
    issued,
    system_ev,
    ticket_ev,
    window_ev,
)

# --- ticket lifecycle --------------------------------------------------------------------------


def test_issue_then_call_leaves_the_queue() -> None:
    """An issued ticket waits; once called it no longer counts as waiting and its window serves."""
    s = run(issued("A001", T0), issued("A002", T0 + 1))
    assert waiting_counts(today(s)) == {("gjj", "normal"): 2}
    s.apply(ticket_ev("called", "A001", T0 + 60, window="w1"))
    day = today(s)
    assert waiting_counts(day) == {("gjj", "normal"): 1}
    assert day.tickets["A001"].status == CALLED
    assert (day.issued, day.called) == (2, 1)
    assert day.wait_total_s == 60
    assert s.halls["h1"].windows["w1"].serving == "A001"


def test_complete_and_no_show_finish_a_ticket_and_free_the_window() -> None:
    """completed and no_show end a called ticket, are counted, and stop the window serving."""
    s = run(
        issued("A001", T0),
        issued("A002", T0),
        ticket_ev("called", "A001", T0 + 10, window="w1"),
        ticket_ev("completed", "A001", T0 + 300, window="w1"),
        ticket_ev("called", "A002", T0 + 301, window="w1"),
    )
    assert s.halls["h1"].windows["w1"].serving == "A002"
    s.apply(ticket_ev("no_show", "A002", T0 + 400, window="w1"))
    day = today(s)
    assert day.tickets["A001"].status == COMPLETED
    assert day.tickets["A002"].status == NO_SHOW
    assert (day.completed, day.no_show) == (1, 1)
    assert s.halls["h1"].windows["w1"].serving is None
    assert waiting_counts(day) == {}


def test_cancel_only_while_waiting() -> None:
    """A waiting ticket can be cancelled; a cancel after the call changes nothing."""
    s = run(
        issued("A001", T0),
        issued("A002", T0),
        ticket_ev("cancelled", "A001", T0 + 5),
        ticket_ev("called", "A002", T0 + 6, window="w1"),
        ticket_ev("cancelled", "A002", T0 + 7),
    )
    day = today(s)
    assert day.tickets["A001"].status == CANCELLED
    assert day.tickets["A002"].status == CALLED
    assert day.cancelled == 1
    assert waiting_counts(day) == {}


def test_transfer_requeues_for_the_new_service() -> None:
    """After service, a transferred ticket waits again, for the new service, from the transfer."""
    s = run(
        issued("A001", T0, service="提取"),
        ticket_ev("called", "A001", T0 + 10, window="w1"),
        ticket_ev("transferred", "A001", T0 + 200, service="贷款"),
    )
    day = today(s)
    t = day.tickets["A001"]
    assert (t.status, t.service, t.issued_at, t.window) == (WAITING, "贷款", T0 + 200, None)
    assert waiting_counts(day) == {("贷款", "normal"): 1}
    assert day.transferred == 1
    assert s.halls["h1"].windows["w1"].serving is None


def test_waiting_counts_per_service_and_priority() -> None:
    """Waiting counts are keyed by (service, priority)."""
    s = run(
        issued("1", T0, "a", "normal"),
        issued("2", T0, "a", "normal"),
        issued("3", T0, "a", "green"),
        issued("4", T0, "b", "appointment"),
        issued("5", T0, "b", "normal"),
        ticket_ev("called", "5", T0 + 1, window="w1"),
    )
    assert waiting_counts(today(s)) == {
        ("a", "normal"): 2,
        ("a", "green"): 1,
        ("b", "appointment"): 1,
    }


def test_calling_order_green_then_appointment_then_normal_fifo() -> None:
    """waiting_tickets orders green, then appointment, then normal; first issued first within."""
    s = run(
        issued("N1", T0 + 1, priority="normal"),
        issued("A1", T0 + 2, priority="appointment"),
        issued("G1", T0 + 3, priority="green"),
        issued("N2", T0 + 4, priority="normal"),
        issued("G2", T0 + 5, priority="green"),
        issued("A2", T0 + 6, priority="appointment"),
    )
    order = [k for k, _ in waiting_tickets(today(s))]
    assert order == ["G1", "G2", "A1", "A2", "N1", "N2"]


def test_calling_order_uses_issue_time_not_arrival() -> None:
    """Within a class the earlier issued ticket is first even if its event arrived later."""
    s = run(issued("N2", T0 + 20), issued("N1", T0 + 10))
    assert [k for k, _ in waiting_tickets(today(s))] == ["N1", "N2"]


def test_called_before_issued_never_waits() -> None:
    """A `called` arriving before its `issued` leaves the ticket called, not waiting again."""
    s = run(
        ticket_ev("called", "A001", T0 + 60, window="w1"),
        issued("A001", T0, service="提取", priority="green"),
    )
    day = today(s)
    t = day.tickets["A001"]
    assert t.status == CALLED
    assert (t.service, t.priority, t.issued_at) == ("提取", "green", T0)
    assert waiting_counts(day) == {}
    assert waiting_tickets(day) == []
    assert (day.issued, day.called) == (1, 1)
    assert day.wait_total_s == 60  # the late issue still gives the call its wait


def test_completed_before_issued_never_waits() -> None:
    """An `issued` arriving after the ticket was completed does not put it back in the queue."""
    s = run(
        ticket_ev("completed", "A001", T0 + 500, window="w1"),
        ticket_ev("called", "A001", T0 + 60, window="w1"),
        issued("A001", T0),
    )
    day = today(s)
    assert day.tickets["A001"].status == COMPLETED
    assert waiting_counts(day) == {}


def test_repeated_issue_of_same_ticket_is_counted_once() -> None:
    """A second `issued` (different id) for a known ticket does not re-queue or re-count it."""
    s = run(
        issued("A001", T0),
        ticket_ev("called", "A001", T0 + 5, window="w1"),
        issued("A001", T0 + 6),
    )
    day = today(s)
    assert day.issued == 1
    assert day.tickets["A001"].status == CALLED


def test_call_of_unknown_window_opens_it() -> None:
    """A call to a window never heard of makes it known, open and serving."""
    s = run(issued("A1", T0), ticket_ev("called", "A1", T0 + 1, window="w9"))
    win = s.halls["h1"].windows["w9"]
    assert (win.state, win.serving) == ("open", "A1")


# --- headcount ---------------------------------------------------------------------------------


def test_headcount_from_two_doors() -> None:
    """Occupancy sums the in/out deltas of every door, each against its own first reading."""
    s = run(
        door_ev("east", 100, 90, T0),
        door_ev("west", 7, 7, T0),
        door_ev("east", 105, 91, T0 + 60),  # +5 -1
        door_ev("west", 10, 8, T0 + 61),  # +3 -1
    )
    day = today(s)
    assert day.occupancy == 6
    assert day.peak_occupancy == 6
    assert day.peak_occupancy_at == T0 + 61


def test_counter_reset_is_a_new_baseline() -> None:
    """Totals going down start a new baseline: no negative traffic, later deltas still count."""
    s = run(
        door_ev("east", 100, 90, T0),
        door_ev("east", 110, 92, T0 + 60),  # 8 inside
        door_ev("east", 0, 0, T0 + 120),  # replaced counter
        door_ev("east", 3, 1, T0 + 180),  # +3 -1
    )
    day = today(s)
    assert day.occupancy == 10
    assert s.halls["h1"].doors["east"].resets == 1


def test_headcount_never_below_zero() -> None:
    """More people out than in (missed entries) leaves occupancy at 0, not negative."""
    s = run(door_ev("d", 0, 0, T0), door_ev("d", 2, 0, T0 + 1), door_ev("d", 2, 9, T0 + 2))
    assert today(s).occupancy == 0
    s.apply(door_ev("d", 4, 9, T0 + 3))
    assert today(s).occupancy == 2


def test_peak_is_kept_after_people_leave() -> None:
    """The day's peak stays at its highest value and time."""
    s = run(door_ev("d", 0, 0, T0), door_ev("d", 9, 0, T0 + 10), door_ev("d", 9, 5, T0 + 20))
    day = today(s)
    assert (day.occupancy, day.peak_occupancy, day.peak_occupancy_at) == (4, 9, T0 + 10)


def test_business_day_uses_the_hall_time_zone() -> None:
    """23:59 and 00:01 Shanghai time are two business days though both fall on one UTC date."""
    late = at("2026-11-26T23:59")
    early = at("2026-11-27T00:01")
    utc = ZoneInfo("UTC")
    assert datetime.fromtimestamp(late, utc).date() == datetime.fromtimestamp(early, utc).date()

    s = run(
        door_ev("d", 0, 0, late - 60),
        door_ev("d", 5, 0, late),
        issued("A001", late),
        door_ev("d", 7, 0, early),
        issued("A001", early, service="贷款"),
    )
    day = today(s)
    assert day.day == date(2026, 11, 27)
    assert day.occupancy == 2  # only today's traffic
    assert day.issued == 1
    assert waiting_counts(day) == {("贷款", "normal"): 1}

    # In UTC both events are the same day, so the headcount keeps going.
    s_utc = run(
        door_ev("d", 0, 0, late - 60),
        door_ev("d", 5, 0, late),
        door_ev("d", 7, 0, early),
        tz="UTC",
    )
    assert today(s_utc).occupancy == 7


def test_stale_events_do_not_touch_today() -> None:
    """Events from an earlier business day, arriving late, change nothing of today's figures."""
    yday = at("2026-11-26T16:00")
    now = at("2026-11-27T09:00")
    s = run(
        door_ev("d", 100, 100, yday),
        door_ev("d", 110, 100, now),
        issued("A001", now),
        issued("A002", now + 1),
    )
    before = encode(s)
    s.apply(issued("A009", yday + 1))
    s.apply(ticket_ev("called", "A002", yday + 2, window="w1"))
    s.apply(door_ev("d", 105, 100, yday + 3))
    day = today(s)
    assert day.day == date(2026, 11, 27)
    assert [k for k, _ in waiting_tickets(day)] == ["A001", "A002"]
    assert day.issued == 2
    assert s.halls["h1"].stale_events == 3
    s.apply(door_ev("d", 112, 100, now + 60))
    assert today(s).occupancy == 12  # +10 earlier, +2 now: the stale reading moved no baseline
    assert before != encode(s)


def test_late_older_door_reading_is_ignored() -> None:
    """A door reading older than the one already applied is neither a reset nor traffic."""
    s = run(
        door_ev("d", 0, 0, T0),
        door_ev("d", 10, 0, T0 + 20),
        door_ev("d", 5, 0, T0 + 10),  # late
        door_ev("d", 12, 0, T0 + 30),
    )
    assert today(s).occupancy == 12
    assert s.halls["h1"].doors["d"].resets == 0


# --- windows, devices, systems -----------------------------------------------------------------


def test_window_open_paused_closed() -> None:
    """A window's state, services and emergency flag follow its newest report."""
    s = run(window_ev("w1", "open", T0, ("提取", "贷款"), emergency=True))
    win = s.halls["h1"].windows["w1"]
    assert (win.state, win.services, win.emergency) == ("open", ["提取", "贷款"], True)
    s.apply(window_ev("w1", "paused", T0 + 10))
    assert s.halls["h1"].windows["w1"].state == "paused"
    s.apply(window_ev("w1", "closed", T0 + 20))
    assert s.halls["h1"].windows["w1"].state == "closed"


def test_late_older_window_event_is_ignored() -> None:
    """A window report older than the current one does not roll its state back."""
    s = run(window_ev("w1", "open", T0 + 10), window_ev("w1", "closed", T0))
    win = s.halls["h1"].windows["w1"]
    assert (win.state, win.since) == ("open", T0 + 10)


def test_device_status_and_heartbeat() -> None:
    """A device's state, kind and last heartbeat follow its reports; a late one is ignored."""
    s = run(
        device_ev("tm-01", "online", T0),
        device_ev("tm-01", "online", T0 + 30),
        device_ev("tm-01", "offline", T0 + 50),
        device_ev("tm-01", "online", T0 + 40),  # late
    )
    dev = s.halls["h1"].devices["tm-01"]
    assert (dev.state, dev.kind, dev.last_seen, dev.since) == (
        "offline",
        "ticket_machine",
        T0 + 50,
        T0 + 50,
    )


def test_system_status() -> None:
    """A system's state and detail follow its reports; `since` moves only on a change."""
    s = run(
        system_ev("core", "up", T0),
        system_ev("core", "up", T0 + 30),
        system_ev("core", "down", T0 + 60, "timeout"),
    )
    sys_ = s.halls["h1"].systems["core"]
    assert (sys_.state, sys_.since, sys_.detail) == ("down", T0 + 60, "timeout")


def test_late_older_system_report_is_ignored() -> None:
    """An older system report arriving after a newer one does not override it."""
    s = run(
        system_ev("core", "up", T0),
        system_ev("core", "up", T0 + 100),
        system_ev("core", "down", T0 + 50, "late"),
    )
    assert s.halls["h1"].systems["core"].state == "up"


def test_complaints_are_kept_once() -> None:
    """A complaint id is registered once even if sent again with a new event id."""
    s = run(complaint_ev("c1", T0, "serious"), complaint_ev("c1", T0 + 1), complaint_ev("c2", T0))
    assert {k: c.severity for k, c in s.halls["h1"].complaints.items()} == {
        "c1": "serious",
        "c2": "normal",
    }


def test_halls_are_independent() -> None:
    """The same ticket number in two halls is two tickets."""
    s = run(issued("A1", T0, hall="h1"), issued("A1", T0, hall="h2"))
    s.apply(ticket_ev("called", "A1", T0 + 1, window="w1", hall="h1"))
    assert waiting_counts(today(s, "h1")) == {}
    assert waiting_counts(today(s, "h2")) == {("gjj", "normal"): 1}
