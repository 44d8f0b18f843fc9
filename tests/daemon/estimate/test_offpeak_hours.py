"""Off-peak guidance within a hall's hours, and for a new hall without history: the centre's
other halls pooled, else the typical day, saying where the figure comes from; never outside
the hall's hours, never on a day that is not a working day."""

from __future__ import annotations

from datetime import date, time

from hallwatch.daemon.core.hours import Hours
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.estimate.offpeak import (
    WaitTable,
    average_wait,
    hall_guidance,
    pooled,
    quiet_slots,
    typical_slots,
)

from tests.factories import at

SHORT = Hours(open=time(10, 0), close=time(15, 30))  # a hall open 10:00-15:30


def history(*cells: tuple[str, float, int]) -> WaitTable:
    """`n` waits of `wait_s` issued at each local time."""
    return average_wait([(at(when), wait) for when, wait, n in cells for _ in range(n)])


def inside(slot: dict[str, object], hours: Hours) -> bool:
    if "hour" in slot:
        start, end = f"{slot['hour']:02d}:00", f"{int(slot['hour']) + 1:02d}:00"  # type: ignore[call-overload]
    else:
        start, end = str(slot["start"]), str(slot["end"])
    return hours.open.strftime("%H:%M") <= start and end <= hours.close.strftime("%H:%M")


def test_own_slots_stay_within_the_hall_hours() -> None:
    """The quietest hours on record at 09:00 and 15:00 (half outside 10:00-15:30) are never
    offered to a hall open 10:00-15:30; without its hours they would come first."""
    own = history(
        ("2026-11-23T09:10", 10.0, 3), ("2026-11-23T15:10", 20.0, 3), ("2026-11-23T11:10", 600.0, 3)
    )
    now = at("2026-11-29T20:00")  # Sunday evening: Monday comes
    plain = quiet_slots(own, now)
    assert [s["hour"] for s in plain] == [9, 15, 11]
    body = hall_guidance(own, [], now, hours=SHORT)
    assert body["source"] == "own" and body["source_text"] == "本厅历史"
    assert [s["hour"] for s in body["quiet_slots"]] == [11]
    assert body["hours"] == {"open": "10:00", "close": "15:30"}


def test_a_new_hall_gets_the_centre_history_and_says_so() -> None:
    """No history of its own: the other halls' pooled, within its hours, on working days only
    (2026-09-30 evening: not 1-7 October), each slot saying 参考全中心历史."""
    thu, wed, mon = "2026-09-24T", "2026-09-23T", "2026-09-28T"
    a = history((thu + "11:10", 60.0, 3), (wed + "14:10", 600.0, 3), (mon + "09:10", 5.0, 3))
    b = history((thu + "11:20", 120.0, 3), (mon + "11:10", 300.0, 5))
    now = at("2026-09-30T18:00")
    calendar = WorkCalendar()
    body = hall_guidance(WaitTable(), [a, b], now, hours=SHORT, days=10, calendar=calendar)
    assert body["source"] == "centre" and body["source_text"] == "参考全中心历史"
    slots = body["quiet_slots"]
    assert slots and all(s["source_text"] == "参考全中心历史" for s in slots)
    assert all(calendar.is_working_day(date.fromisoformat(s["date"])) for s in slots)
    assert all(inside(s, SHORT) for s in slots)
    assert (slots[0]["date"], slots[0]["hour"]) == ("2026-10-08", 11)  # Thursday, pooled 90 s
    assert slots[0]["avg_wait_s"] == 90.0  # each hall counts once: (60 + 120) / 2
    assert "参考全中心历史" in body["hint"]


def test_pooled_is_scaled_to_a_thin_own_history() -> None:
    """A hall with a few waits of its own, twice the centre's where both have data: the pooled
    figures are doubled; each hall counts once whatever its volume."""
    centre = [history(("2026-11-23T10:10", 100.0, 30)), history(("2026-11-23T10:20", 300.0, 3))]
    pool = pooled(centre)
    assert pool.mean(0, 10) == 200.0 and pool.counts[10] == 33
    own = history(("2026-11-23T10:30", 400.0, 3))
    assert pooled(centre, own).mean(0, 10) == 400.0


def test_without_any_history_the_typical_day_cut_to_the_hours() -> None:
    """Nobody has history: 通常 10:00-11:00 and 14:30-16:00, cut to a hall closing at 15:30,
    on the coming working days only (Saturday and Sunday skipped), and it says 参考一般规律."""
    now = at("2026-11-27T12:00")  # a Friday at noon: 10:00 today is past
    calendar = WorkCalendar()
    body = hall_guidance(WaitTable(), [WaitTable()], now, hours=SHORT, calendar=calendar)
    assert body["source"] == "typical" and body["source_text"] == "参考一般规律"
    got = [(s["date"], s["start"], s["end"]) for s in body["quiet_slots"]]
    assert got == [
        ("2026-11-27", "14:30", "15:30"),
        ("2026-11-30", "10:00", "11:00"),
        ("2026-11-30", "14:30", "15:30"),
    ]
    assert body["hint"] == "本厅尚无历史数据，参考一般规律：通常 10:00–11:00、14:30–15:30 人较少"
    late = Hours(open=time(13, 0), close=time(17, 0))
    slots = typical_slots(now, late, calendar=calendar)
    assert [(s["start"], s["end"]) for s in slots] == [("14:30", "16:00"), ("14:30", "16:00")]
