"""Tests of hallwatch.daemon.core.state: snapshots, restore mid-stream, invariants over any
event sequence, and the caps per hall and day."""

from __future__ import annotations

from datetime import date

from hallwatch.daemon.core.state import (
    SNAPSHOT_VERSION,
    WAITING,
    HallsState,
    decode,
    encode,
    waiting_counts,
    waiting_tickets,
)
from hallwatch.sensors.events import Event
from hypothesis import given, settings
from hypothesis import strategies as st

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

# --- snapshots ---------------------------------------------------------------------------------


def test_snapshot_round_trip() -> None:
    """decode(encode(state)) is the same state, every part included."""
    s = run(
        window_ev("w1", "open", T0),
        door_ev("d", 0, 0, T0),
        door_ev("d", 3, 1, T0 + 1),
        issued("A1", T0, priority="green"),
        issued("A2", T0 + 1),
        ticket_ev("called", "A1", T0 + 2, window="w1"),
        device_ev("tm", "online", T0),
        system_ev("core", "degraded", T0, "slow"),
        complaint_ev("c1", T0),
    )
    restored = decode(encode(s))
    assert restored is not None
    assert encode(restored) == encode(s)
    assert restored == s
    assert today(restored).day == date(2026, 11, 26)


def test_restored_tickets_share_their_names() -> None:
    """A restored day's tickets hold one copy of each service, priority, window and status (as
    tickets from parsed events do), not one per ticket: memory of a 500-hall day halved."""
    s = run(
        *(issued(f"A{i}", T0 + i, "提取") for i in range(3)),
        *(ticket_ev("called", f"A{i}", T0 + 10 + i, window="w01") for i in range(3)),
    )
    restored = decode(encode(s))
    assert restored is not None
    a, b, c = today(restored).tickets.values()
    for field in ("service", "priority", "window", "status"):
        assert getattr(a, field) is getattr(b, field) is getattr(c, field), field
    assert a.first_issued_at is a.issued_at


def test_snapshot_of_another_version_or_garbage_is_none() -> None:
    """A snapshot of another version, or bytes that are not one, decode to None."""
    version = f'"version":{SNAPSHOT_VERSION}'.encode()
    blob = encode(run(issued("A1", T0))).replace(version, b'"version":99')
    assert b'"version":99' in blob
    assert decode(blob) is None
    assert decode(b"not json") is None
    assert decode(b'{"version": 1, "state": {"halls": 3}}') is None


_BASE = at("2026-11-26T08:00")
_ticket_nums = st.sampled_from(["A1", "A2", "A3", "B1"])
_times = st.floats(min_value=0, max_value=2 * 86400, allow_nan=False).map(lambda x: _BASE + x)
_halls = st.sampled_from(["h1", "h2"])
_events = st.one_of(
    st.builds(
        issued,
        _ticket_nums,
        _times,
        st.sampled_from(["提取", "贷款"]),
        st.sampled_from(["normal", "green", "appointment"]),
        _halls,
    ),
    st.builds(
        ticket_ev,
        st.sampled_from(["called", "completed", "no_show", "cancelled"]),
        _ticket_nums,
        _times,
        st.sampled_from(["w1", "w2"]),
        st.none(),
        _halls,
    ),
    st.builds(
        ticket_ev,
        st.just("transferred"),
        _ticket_nums,
        _times,
        st.none(),
        st.sampled_from(["提取", "贷款"]),
        _halls,
    ),
    st.builds(
        window_ev,
        st.sampled_from(["w1", "w2"]),
        st.sampled_from(["open", "paused", "closed"]),
        _times,
        st.just(("提取",)),
        st.booleans(),
        _halls,
    ),
    st.builds(
        door_ev,
        st.sampled_from(["east", "west"]),
        st.integers(0, 50),
        st.integers(0, 50),
        _times,
        _halls,
    ),
    st.builds(device_ev, st.just("tm"), st.sampled_from(["online", "offline"]), _times),
    st.builds(system_ev, st.just("core"), st.sampled_from(["up", "down"]), _times),
    st.builds(complaint_ev, st.sampled_from(["c1", "c2"]), _times),
)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(_events, max_size=40), data=st.data())
def test_restore_mid_stream_equals_applying_all(events: list[Event], data: st.DataObject) -> None:
    """Snapshot at any point, restore, apply the rest: the same state as applying everything."""
    cut = data.draw(st.integers(0, len(events)))
    whole = run(*events)

    first = run(*events[:cut])
    restored = decode(encode(first))
    assert restored is not None
    assert encode(restored) == encode(first)
    for ev in events[cut:]:
        restored.apply(ev)
    assert encode(restored) == encode(whole)
    assert restored.applied == whole.applied


@settings(max_examples=300, deadline=None)
@given(events=st.lists(_events, max_size=40))
def test_invariants_hold_for_any_sequence(events: list[Event]) -> None:
    """For any event order: occupancy >= 0, waiting tickets all have a service, counts agree."""
    s = run(*events)
    for hall in s.halls.values():
        day = hall.today
        if day is None:
            continue
        assert 0 <= day.occupancy <= day.peak_occupancy
        waiting = waiting_tickets(day)
        assert all(t.status == WAITING and t.service for _, t in waiting)
        assert sum(waiting_counts(day).values()) == len(waiting)
        ranks = [{"green": 0, "appointment": 1, "normal": 2}[t.priority] for _, t in waiting]
        assert ranks == sorted(ranks)


def test_ticket_cap_per_hall_and_day() -> None:
    """Past `limits.tickets` issued tickets a day, more are not applied; the next day is fresh."""
    from hallwatch.daemon.core.state import Limits

    state = HallsState(limits=Limits(tickets=3))
    t0 = at("2026-11-26T09:00")
    for i in range(5):
        state.apply(issued(f"A{i}", t0 + i, "提取"))
    day = state.halls["h1"].today
    assert day is not None and day.issued == 3 and state.over_limit == 2
    state.apply(issued("A9", at("2026-11-27T09:00"), "提取"))
    tomorrow = state.halls["h1"].today
    assert tomorrow is not None and tomorrow.issued == 1


def test_day_at_hides_yesterday_after_midnight() -> None:
    """`day_at` gives today's day during the day and nothing once `now` is the next day."""
    state = HallsState()
    state.apply(issued("A1", at("2026-11-26T16:50"), "提取"))
    hall = state.halls["h1"]
    assert state.day_at(hall, at("2026-11-26T17:30")) is hall.today
    assert state.day_at(hall, at("2026-11-27T00:05")) is None


def test_apply_says_what_it_did() -> None:
    """`apply` answers applied, stale_day, outdated or over_limit, and a refused event changes
    nothing of the state but its own counter (not even the services it names)."""
    from hallwatch.daemon.core.state import Limits, Outcome

    state = HallsState(limits=Limits(windows=1))
    now = at("2026-11-27T09:00")
    assert state.apply(window_ev("w1", "open", now, ("提取",))) is Outcome.APPLIED
    assert state.apply(issued("A1", now + 1, "提取")) is Outcome.APPLIED
    assert state.apply(device_ev("tm", "online", now)) is Outcome.APPLIED
    before = encode(state)
    assert state.apply(issued("A9", at("2026-11-26T16:00"), "新业务")) is Outcome.STALE_DAY
    assert state.apply(window_ev("w1", "closed", now - 60, ("提取",))) is Outcome.OUTDATED
    assert state.apply(device_ev("tm", "offline", now - 5)) is Outcome.OUTDATED
    assert state.apply(window_ev("w2", "open", now, ("提取",))) is Outcome.OVER_LIMIT
    hall = state.halls["h1"]
    assert state.applied == 3 and state.over_limit == 1 and hall.stale_events == 1
    hall.stale_events, state.over_limit = 0, 0
    assert encode(state) == before


def test_ticket_cap_holds_for_every_event_that_creates_a_ticket() -> None:
    """A flood of `cancelled` (or `called`) for tickets never issued creates no more tickets
    than the daily cap allows; the rest are counted as over the limit."""
    from hallwatch.daemon.core.state import Limits

    state = HallsState(limits=Limits(tickets=3))
    t0 = at("2026-11-26T09:00")
    for i in range(5):
        state.apply(ticket_ev("cancelled", f"X{i}", t0 + i))
    state.apply(ticket_ev("called", "Y1", t0 + 9, window="w1"))
    assert len(today(state).tickets) == 3 and state.over_limit == 3
    state.apply(ticket_ev("cancelled", "X0", t0 + 10))  # a known ticket is not a new one
    assert state.over_limit == 3


def test_complaints_are_capped_per_hall_and_day() -> None:
    """Past `limits.complaints` a business day, complaints are counted over the limit; the same
    complaint again is no new one, and the next day starts afresh."""
    from hallwatch.daemon.core.state import Limits

    state = HallsState(limits=Limits(complaints=2))
    t0 = at("2026-11-26T09:00")
    for i in range(4):
        state.apply(complaint_ev(f"c{i}", t0 + i))
    state.apply(complaint_ev("c0", t0 + 9))
    assert sorted(state.halls["h1"].complaints) == ["c0", "c1"] and state.over_limit == 2
    state.apply(complaint_ev("d0", at("2026-11-27T09:00")))
    assert "d0" in state.halls["h1"].complaints and state.over_limit == 2


def test_complaint_counts_are_kept_for_a_month_of_days() -> None:
    """A device cycling through old days cannot evade the daily cap by outliving its counts:
    once a month of days is counted, complaints older than all of them are refused."""
    from hallwatch.daemon.core.state import Limits

    state = HallsState(limits=Limits(complaints=1))
    t0 = at("2026-11-26T09:00")
    for d in range(40):
        state.apply(complaint_ev(f"new{d}", t0 - d * 86400))
    assert len(state.halls["h1"].complaint_days) == 31
    assert len(state.halls["h1"].complaints) == 31 and state.over_limit == 9
