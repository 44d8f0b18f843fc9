"""Helpers of the state's tests (test_state.py, test_state_invariants.py)."""

from __future__ import annotations

from hallwatch.daemon.core.state import Day, HallsState
from hallwatch.sensors.events import Event

from tests.factories import at

T0 = at("2026-11-26T09:00")


def run(*events: Event, tz: str = "Asia/Shanghai") -> HallsState:
    state = HallsState(tz=tz)
    for ev in events:
        state.apply(ev)
    return state


def today(state: HallsState, hall: str = "h1") -> Day:
    day = state.halls[hall].today
    assert day is not None
    return day
