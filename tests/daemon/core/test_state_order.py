"""The state's final picture does not depend on the order a business day's events arrive in:
simulated days delayed or shuffled against the same days in event-time order, any event
sequence of one day against its permutations, and the late-event cases one by one."""

from __future__ import annotations

import random

import msgspec
import pytest
from hallwatch.daemon.core.state import CALLED, COMPLETED, WAITING, HallsState
from hallwatch.sensors.events import Event
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.daemon.core.order_days import day_events, delayed, seen, shuffled
from tests.daemon.core.state_helpers import T0, run, today
from tests.daemon.core.test_state_invariants import _halls, _ticket_nums
from tests.factories import at, door_ev, issued, ticket_ev, window_ev


@pytest.mark.parametrize("profile", ["normal", "peak", "outage", "quiet"])
def test_simulated_day_late_or_shuffled_ends_as_in_order(profile: str) -> None:
    """A simulated day with a fifth of its events up to 30 minutes late, or fully shuffled,
    leaves the tickets, counters, windows and headcount exactly as the day in time order."""
    events = day_events(profile, 1)
    truth = seen(run(*events))
    for k in range(2):
        rng = random.Random(f"{profile}:{k}")
        assert seen(run(*delayed(events, rng, 0.2, 1800.0))) == truth
        assert seen(run(*shuffled(events, rng))) == truth


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32), share=st.floats(0.0, 1.0), late_s=st.floats(1.0, 4 * 3600))
def test_any_delays_of_a_quiet_day_end_as_in_order(seed: int, share: float, late_s: float) -> None:
    """Whatever share of a day's events is late, by up to four hours: the in-order picture."""
    events = day_events("quiet", 2)
    late = delayed(events, random.Random(seed), share, late_s)
    assert seen(run(*late)) == seen(run(*events))


_DAY = at("2026-11-26T08:00")
_times = st.floats(min_value=0, max_value=12 * 3600, allow_nan=False).map(lambda x: _DAY + x)
_services = st.sampled_from(["提取", "贷款"])
_one_day = st.one_of(
    st.builds(
        issued, _ticket_nums, _times, _services, st.sampled_from(["normal", "green"]), _halls
    ),
    st.builds(
        ticket_ev,
        st.sampled_from(["called", "completed", "no_show", "cancelled"]),
        _ticket_nums,
        _times,
        st.sampled_from(["w1", "w2", None]),
        st.none(),
        _halls,
    ),
    st.builds(
        ticket_ev, st.just("transferred"), _ticket_nums, _times, st.none(), _services, _halls
    ),
    st.builds(
        window_ev,
        st.sampled_from(["w1", "w2"]),
        st.sampled_from(["open", "closed"]),
        _times,
        st.sampled_from([("提取",), ("贷款",)]),
        st.booleans(),
        _halls,
    ),
    st.builds(
        door_ev,
        st.sampled_from(["east", "west"]),
        st.integers(0, 9),
        st.integers(0, 9),
        _times,
        _halls,
    ),
)


def _picture(state: HallsState) -> bytes:
    """Each hall's day (tickets in key order), windows and doors, encoded."""
    out = {}
    for name, hall in sorted(state.halls.items()):
        day = hall.today
        if day is not None:
            day.tickets = dict(sorted(day.tickets.items()))
        out[name] = (day, dict(sorted(hall.windows.items())), dict(sorted(hall.doors.items())))
    return msgspec.json.encode(out)


@settings(max_examples=400, deadline=None)
@given(events=st.lists(_one_day, max_size=40), data=st.data())
def test_any_permutation_of_a_days_events_gives_the_same_state(
    events: list[Event], data: st.DataObject
) -> None:
    """Any events of one business day (ill-formed lifecycles, ties, resets included), applied
    in any order, give the same tickets, counters, windows, doors and headcount."""
    other = data.draw(st.permutations(events))
    assert _picture(run(*other)) == _picture(run(*sorted(events, key=lambda e: e.ts)))


def test_late_call_after_completion_counts_the_call_and_its_wait() -> None:
    """A `called` arriving after its `completed` fills in called_at, the wait and the count."""
    s = run(
        issued("A1", T0),
        ticket_ev("completed", "A1", T0 + 400, window="w1"),
        ticket_ev("called", "A1", T0 + 100, window="w1"),
    )
    day, t = today(s), today(s).tickets["A1"]
    assert (t.status, t.called_at, t.window) == (COMPLETED, T0 + 100, "w1")
    assert (day.called, day.completed, day.wait_total_s) == (1, 1, 100.0)
    assert s.halls["h1"].windows["w1"].serving is None


def test_late_older_transfer_does_not_undo_a_newer_call() -> None:
    """A transfer arriving after the call of its second visit leaves the ticket called."""
    s = run(
        issued("A1", T0, service="提取"),
        ticket_ev("called", "A1", T0 + 10, window="w1"),
        ticket_ev("completed", "A1", T0 + 100, window="w1"),
        ticket_ev("called", "A1", T0 + 300, window="w2"),
        ticket_ev("transferred", "A1", T0 + 102, service="贷款"),
    )
    day, t = today(s), today(s).tickets["A1"]
    assert (t.status, t.service, t.issued_at, t.window) == (CALLED, "贷款", T0 + 102, "w2")
    assert (day.called, day.transferred, day.wait_total_s) == (2, 1, 10.0 + 198.0)
    assert s.halls["h1"].windows["w2"].serving == "A1"


def test_window_serves_the_newest_call_not_the_last_to_arrive() -> None:
    """A late, older call of another ticket at a window does not take the window from the
    ticket called there after it; the late one's completion does not free it either."""
    s = run(
        issued("A1", T0),
        issued("A2", T0),
        ticket_ev("called", "A2", T0 + 300, window="w1"),
        ticket_ev("called", "A1", T0 + 10, window="w1"),
        ticket_ev("completed", "A1", T0 + 290, window="w1"),
    )
    win = s.halls["h1"].windows["w1"]
    assert (win.serving, win.serving_since) == ("A2", T0 + 300)


def test_late_issue_after_a_transfer_keeps_the_ticket_waiting() -> None:
    """The first `issued` arriving last neither re-queues nor un-transfers the ticket."""
    s = run(
        ticket_ev("transferred", "A1", T0 + 200, service="贷款"),
        ticket_ev("called", "A1", T0 + 10, window="w1"),
        issued("A1", T0, service="提取"),
    )
    day, t = today(s), today(s).tickets["A1"]
    assert (t.status, t.service, t.issued_at, t.first_issued_at) == (WAITING, "贷款", T0 + 200, T0)
    assert (day.issued, day.called, day.transferred, day.wait_total_s) == (1, 1, 1, 10.0)


def test_late_first_door_reading_is_the_baseline() -> None:
    """A door's first reading arriving after later ones is still its baseline: the traffic
    since it counts, the later reading first taken as baseline does not stay one."""
    s = run(door_ev("d", 7, 2, T0 + 60), door_ev("d", 9, 2, T0 + 90), door_ev("d", 0, 0, T0))
    day = today(s)
    assert (day.occupancy, day.peak_occupancy, day.peak_occupancy_at) == (7, 7, T0 + 90)


def test_late_reset_reading_keeps_the_traffic_after_the_reset() -> None:
    """The reset reading (0, 0) arriving after the counter's next reading: the people counted
    since the reset still count, and it is one reset."""
    s = run(
        door_ev("d", 100, 90, T0),
        door_ev("d", 110, 92, T0 + 60),
        door_ev("d", 3, 1, T0 + 180),
        door_ev("d", 0, 0, T0 + 120),
    )
    assert today(s).occupancy == 10
    assert s.halls["h1"].doors["d"].resets == 1


def test_headcount_floor_follows_event_time_across_doors() -> None:
    """Exits at one door and entries at another, arriving in the reverse of their order, give
    the headcount of their time order (the floor at 0 applied in time order)."""
    base = [door_ev("a", 0, 0, T0), door_ev("b", 0, 0, T0)]
    ordered = [door_ev("a", 0, 3, T0 + 10), door_ev("b", 5, 0, T0 + 20)]
    truth = today(run(*base, *ordered))
    late = today(run(*base, *reversed(ordered)))
    assert (
        (late.occupancy, late.peak_occupancy) == (truth.occupancy, truth.peak_occupancy) == (5, 5)
    )


def test_call_at_the_instant_of_the_transfer_takes_the_transferred_ticket() -> None:
    """An idle window calls a transferred ticket the same millisecond: in either arrival order
    the ticket is called for its new service (the simulated days have such tickets)."""
    first = [
        issued("A1", T0, service="提取"),
        ticket_ev("called", "A1", T0 + 10, window="w1"),
        ticket_ev("completed", "A1", T0 + 100, window="w1"),
    ]
    moved = ticket_ev("transferred", "A1", T0 + 100, service="贷款")
    call = ticket_ev("called", "A1", T0 + 100, window="w2")
    for late in ([moved, call], [call, moved]):
        day = today(run(*first, *late))
        t = day.tickets["A1"]
        assert (t.status, t.service, t.window, t.called_at) == (CALLED, "贷款", "w2", T0 + 100)
        assert (day.called, day.completed, day.transferred) == (2, 1, 1)
