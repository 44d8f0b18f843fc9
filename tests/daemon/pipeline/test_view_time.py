"""A hall view's time and the events in its state (daemon/pipeline/schedule.py `TickPlan.views`):
the tick hands the event loop back while it renews advice and builds views, ingest goes on, so a
view built later holds events that came after the tick began. Dated at the tick's start, a peak
such a view shows would begin before the event that made it (the five-hall pair proof on CI: an
alert id earlier than any peak of the day's truth)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hallwatch.alerts.view import HallView
from hallwatch.daemon.config.alerts import RuleSettings
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.pipeline import schedule
from hallwatch.daemon.pipeline.schedule import Changes, TickPlan
from hallwatch.daemon.pipeline.views import Queue, hall_view
from hallwatch.sensors.events import DoorEvent

from tests.factories import at

T = at("2026-11-26T10:00")  # a Thursday morning
STEP_S = 2.0  # how long each hand-back lasts on the test's clock


class Hall:
    """Two halls whose door counters read 0 in, 0 out; while the tick gives way, 25 people walk
    into h2 (a reading half a second before the clock's time then)."""

    def __init__(self) -> None:
        self.state = HallsState()
        self.changes = Changes()
        self.now = T
        self.came = False
        for name in ("h1", "h2"):
            self.apply(DoorEvent(name, f"{name}:base", T - 120, "d1", 0, 0))
            self.apply(DoorEvent(name, f"{name}:quiet", T - 60, "d1", 3, 3))

    def apply(self, ev: DoorEvent) -> None:
        self.state.apply(ev)
        self.changes.touch(ev.hall)

    async def give_way(self) -> None:
        self.now += STEP_S
        if not self.came:
            self.came = True
            self.apply(DoorEvent("h2", "h2:in", self.now - 0.5, "d1", 28, 3))

    def view(self, name: str, queue: Queue | None, when: float) -> HallView:
        return hall_view(
            self.state, name, when, advice=None, heartbeat_timeout_s=90.0,
            calendar=WorkCalendar(), queue=queue,
        )  # fmt: skip


async def views_of(hall: Hall, clock: Callable[[], float]) -> dict[str, HallView]:
    plan = TickPlan(hall.give_way)
    got = await plan.views(
        hall.state,
        hall.changes,
        T,
        ["h1", "h2"],
        hall.view,
        rules=RuleSettings(),
        heartbeat_timeout_s=90.0,
        clock=clock,
    )
    return {v.hall: v for v in got}


async def test_a_view_is_not_dated_before_the_events_that_came_while_the_tick_gave_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """h2's view, built after the tick gave way once, holds the 25 people who came meanwhile and
    is dated at the clock's time then (not the tick's start, 1.5 s before their reading); h1's,
    built first, keeps the tick's start."""
    monkeypatch.setattr(schedule, "YIELD_S", -1.0)  # hand the loop back after every view
    hall = Hall()
    views = await views_of(hall, lambda: hall.now)
    assert views["h2"].headcount == 25
    assert views["h2"].now == T + STEP_S
    assert views["h2"].now >= T + STEP_S - 0.5  # not before the reading it holds
    assert views["h1"].headcount == 0 and views["h1"].now == T


async def test_a_view_is_never_dated_before_the_ticks_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A clock that reads before the tick's start (a replay's, stepped by the events) dates
    every view at the tick's start: later events may be in the state, earlier times never."""
    monkeypatch.setattr(schedule, "YIELD_S", -1.0)
    views = await views_of(Hall(), lambda: T - 30.0)
    assert views["h2"].headcount == 25 and views["h2"].now == T
    assert views["h1"].now == T
