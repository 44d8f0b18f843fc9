"""Simulated days delivered out of order, for the state's order tests (test_state_order.py):
a day's parsed events, reordered by random delays or fully shuffled, and the part of the state
that the contract's consumers see."""

from __future__ import annotations

import json
import random
from functools import cache
from typing import Any

from hallwatch.sensors.events import Event
from hallwatch.sensors.parse import parse
from hallwatch.sensors.profiles import PROFILES
from hallwatch.sensors.simulator import simulate_day


@cache
def day_events(profile: str, seed: int) -> tuple[Event, ...]:
    """The simulated day's events in event-time order (the simulator's order)."""
    out: list[Event] = []
    for m in simulate_day(PROFILES[profile], seed).messages:
        ev = parse(m.topic, json.dumps(m.payload).encode())
        assert isinstance(ev, Event), ev
        out.append(ev)
    return tuple(out)


def delayed(events: tuple[Event, ...], rng: random.Random, share: float, max_s: float) -> list:
    """Arrival order when `share` of the events each arrive up to `max_s` late."""
    keyed = [
        (ev.ts + (rng.uniform(0.0, max_s) if rng.random() < share else 0.0), i, ev)
        for i, ev in enumerate(events)
    ]
    return [ev for _, _, ev in sorted(keyed, key=lambda k: (k[0], k[1]))]


def shuffled(events: tuple[Event, ...], rng: random.Random) -> list[Event]:
    out = list(events)
    rng.shuffle(out)
    return out


def seen(state: Any) -> dict[str, Any]:
    """What the contract's consumers see of the state: each ticket's status, service, window
    and times, the day's counters, the windows (serving included), the headcount and peak."""
    out: dict[str, Any] = {}
    for name, hall in state.halls.items():
        day = hall.today
        assert day is not None
        out[name] = {
            "tickets": {
                k: (t.status, t.service, t.priority, t.window, t.issued_at, t.called_at)
                for k, t in sorted(day.tickets.items())
            },
            "counts": (
                day.issued,
                day.called,
                day.completed,
                day.no_show,
                day.cancelled,
                day.transferred,
                day.wait_total_s,
            ),
            "windows": {
                k: (w.state, w.services, w.emergency, w.since, w.serving, w.serving_since)
                for k, w in sorted(hall.windows.items())
            },
            "headcount": (day.occupancy, day.peak_occupancy, day.peak_occupancy_at),
            "services": sorted(hall.services),  # names (first seen: the first applied)
        }
    return out
