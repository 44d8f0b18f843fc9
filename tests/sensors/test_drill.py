"""Drill scenarios (sensors.drill): contract-valid traffic that really crosses the plan's marks."""

from __future__ import annotations

import json

import pytest
from hallwatch.daemon.core.state import HallsState, waiting_counts
from hallwatch.sensors import drill
from hallwatch.sensors.events import Rejection
from hallwatch.sensors.parse import parse

T0 = 1_796_000_000.0


def play(name: str, minutes: float | None = None) -> list[tuple[float, int, int, str]]:
    """Apply a scenario to a fresh state: after every step (offset, people in the hall, people
    waiting, the core system's state)."""
    state = HallsState()
    out = []
    for i, (offset, topic, body) in enumerate(
        drill.scenario(name, "hall", "drill", minutes=minutes)
    ):
        payload = json.dumps({"id": f"d{i}", "ts": int((T0 + offset) * 1000), **body}).encode()
        event = parse(topic, payload, "hall")
        assert not isinstance(event, Rejection), (topic, body, event)
        state.apply(event)
        hall = state.halls["drill"]
        day = hall.today
        waiting = sum(waiting_counts(day).values()) if day else 0
        core = hall.systems["core"].state if "core" in hall.systems else "-"
        out.append((offset, day.occupancy if day else 0, waiting, core))
    return out


def test_the_peak_passes_20_people_early_and_clears_by_the_end() -> None:
    """Within four minutes more than 20 people are in the hall and waiting grows; by the end
    of the drill everyone has been served and has left."""
    steps = play("peak", minutes=20)
    early = [s for s in steps if s[0] <= 240]
    assert max(people for _, people, _, _ in early) >= 20
    assert max(waiting for _, _, waiting, _ in early) >= 20
    last_offset, people, waiting, _ = steps[-1]
    assert (people, waiting) == (0, 0) and last_offset <= 20 * 60


def test_the_outage_lasts_past_the_half_hour_then_recovers() -> None:
    """The core system is down for the given minutes, then up again."""
    steps = play("outage", minutes=35)
    downs = [offset for offset, _, _, core in steps if core == "down"]
    assert downs and max(downs) - min(downs) >= 30 * 60
    assert steps[-1][3] == "up"


def test_an_unknown_scenario_is_refused() -> None:
    """A typo names the scenarios there are."""
    with pytest.raises(ValueError, match="peak, outage, complaint"):
        drill.scenario("fire", "hall", "drill")
