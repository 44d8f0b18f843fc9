"""Tests of estimate.offpeak: the weekday x hour wait table and the quietest coming slots."""

from __future__ import annotations

import json
from datetime import date

from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.estimate.offpeak import WaitTable, average_wait, guidance, quiet_slots

from tests.factories import at

MON_10 = at("2026-11-23T10:15")  # a Monday
MON_14 = at("2026-11-23T14:05")
TUE_10 = at("2026-11-24T10:30")


def test_average_wait_by_weekday_and_hour() -> None:
    """Waits are averaged per (weekday, local hour of issue), Monday = 0."""
    table = average_wait([(MON_10, 600.0), (MON_10 + 60, 300.0), (TUE_10, 120.0)])
    assert table.mean(0, 10) == 450.0
    assert table.mean(1, 10) == 120.0
    assert table.mean(0, 14) is None


def test_quiet_slots_prefers_low_waits_with_enough_samples() -> None:
    """The slot with the lowest mean wait comes first; thin slots are never recommended."""
    rows = [(MON_10, 900.0)] * 3 + [(MON_14, 100.0)] * 3 + [(TUE_10, 0.0)] * 2
    table = average_wait(rows)
    now = at("2026-11-29T20:00")  # Sunday evening: the coming Monday and Tuesday
    slots = quiet_slots(table, now, days=3, min_samples=3)
    assert [(s["weekday"], s["hour"]) for s in slots] == [(0, 14), (0, 10)]
    assert slots[0]["date"] == "2026-11-30"
    assert slots[0]["label"] == "周一 14:00-15:00"


def test_quiet_slots_only_look_ahead() -> None:
    """Slots already past in the window (the current hour) are not offered."""
    table = average_wait([(MON_14, 10.0)] * 5)
    now = at("2026-11-30T14:30")  # Monday 14:30: next Monday 14:00 is 7 days away
    assert quiet_slots(table, now, days=3) == []
    assert len(quiet_slots(table, now, days=7)) == 1


def test_never_sends_people_to_a_closed_hall_on_a_holiday() -> None:
    """On 2026-09-30 the quietest coming slots skip National Day (1-3 October, weekdays that are
    public holidays) and the weekend, and go to the next working day; without the calendar the
    holiday would have been first."""
    # Thursday 1 October has the lowest waits on record, Monday 5 October is a holiday too.
    thu = at("2026-09-24T10:15")  # a Thursday, same weekday as 1 October
    wed = at("2026-09-23T15:15")  # a Wednesday
    table = average_wait([(thu, 60.0)] * 3 + [(wed, 600.0)] * 3)
    now = at("2026-09-30T18:00")  # Wednesday evening before National Day
    calendar = WorkCalendar()
    assert not calendar.is_working_day(date(2026, 10, 1))
    plain = quiet_slots(table, now, days=8)
    assert plain[0]["date"] == "2026-10-01"
    slots = quiet_slots(table, now, days=8, calendar=calendar)
    assert slots and all(calendar.is_working_day(date.fromisoformat(s["date"])) for s in slots)
    assert "2026-10-01" not in {s["date"] for s in slots}
    body = guidance(table, now, days=8, calendar=calendar)
    assert body["quiet_slots"] == slots


def test_guidance_is_json_and_chinese() -> None:
    """The endpoint body serialises to JSON and carries a Simplified Chinese hint."""
    table = WaitTable()
    body = guidance(average_wait([(MON_10, 60.0)] * 3), at("2026-11-29T20:00"))
    text = json.dumps(body, ensure_ascii=False)
    assert "错峰" in text
    assert body["by_weekday_hour"][0]["avg_wait_s"] == 60.0
    assert guidance(table, MON_10)["quiet_slots"] == []
