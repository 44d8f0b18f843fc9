"""Tests of core.hours' model: a hall's hours and lunch rotation, the timetable, and the
rotation's coverage check (`lunch_gaps`)."""

from __future__ import annotations

from datetime import time

from hallwatch.daemon.core.hours import Gap, Hours, Lunch, Timetable, lunch_gaps


def slot(window: str, start: str, end: str) -> Lunch:
    return Lunch(window, time.fromisoformat(start), time.fromisoformat(end))


def test_timetable_gives_a_hall_its_own_hours_else_the_default() -> None:
    """A hall named in the timetable gets its own hours; any other the centre's."""
    east = Hours(close=time(16, 30))
    tt = Timetable(Hours(), {"east": east})
    assert tt.for_hall("east") is east and tt.for_hall("west") == Hours()


def test_at_lunch_is_the_slots_under_way() -> None:
    """A slot covers its start and not its end."""
    h = Hours(lunch=(slot("w1", "11:30", "12:30"), slot("w2", "12:30", "13:30")))
    assert [s.window for s in h.at_lunch(time(11, 30))] == ["w1"]
    assert [s.window for s in h.at_lunch(time(12, 30))] == ["w2"]
    assert h.at_lunch(time(13, 30)) == ()


def test_lunch_gaps_find_each_uncovered_stretch_and_merge_neighbours() -> None:
    """w1 (the only loan window) off 11:30-12:00 and 12:00-12:30 (two slots): one gap
    11:30-12:30; w2 and w3 (both 提取) off in turn: 提取 always covered; w3 overlapping w2
    12:45-13:00 leaves 提取 uncovered just then."""
    h = Hours(
        lunch=(
            slot("w1", "11:30", "12:00"),
            slot("w1", "12:00", "12:30"),
            slot("w2", "12:30", "13:00"),
            slot("w3", "12:45", "13:30"),
        ),
        windows={"w1": ("贷款",), "w2": ("提取",), "w3": ("提取",)},
    )
    assert lunch_gaps(h) == [
        Gap(time(11, 30), time(12, 30), "贷款", ("w1",)),
        Gap(time(12, 45), time(13, 0), "提取", ("w2", "w3")),
    ]
    assert lunch_gaps(Hours(lunch=h.lunch)) == []  # services unknown: the runtime alert checks
