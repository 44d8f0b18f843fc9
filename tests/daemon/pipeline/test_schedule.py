"""The alert tick's schedule (daemon/pipeline/schedule.py): evaluating only the halls due gives
the alerts that evaluating every hall on every tick gives.

Tolerance: a transition may come later than under the every-tick rule only when the estimated
wait crossed the queue-peak threshold with no event (the forward simulation moves with the
clock), and then by at most SWEEP_S + one tick (32 s), because every hall is evaluated at least
every SWEEP_S. Every other condition is an event (evaluated on the next tick) or a time the
schedule computes (heartbeats, `after_s`, opening hours, midnight), so it is exact. The plan
asks for more windows at 20 people or a 20-minute wait: 32 s on a 20-minute threshold is under
3 %, far inside the wait estimate's own error, and the headcount side is always exact.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.service import Alerts
from hallwatch.alerts.view import Transition
from hallwatch.daemon.estimate.advice import Advice
from hallwatch.daemon.main import Daemon
from hallwatch.daemon.mqtt.ingest import Ingest
from hallwatch.daemon.pipeline.schedule import SWEEP_S, AdviceCache, TickPlan
from hallwatch.daemon.store.events import Store
from hallwatch.sensors.profiles import PROFILES, hm
from hallwatch.sensors.simulator import epoch, simulate_day

from tests.simulation.sim_run import settings_for

TICK_S = 2.0


class EveryHall(TickPlan):
    """The rule before: every hall on every tick, its advice computed afresh each time."""

    def halls(self, halls: Iterable[str], *_: Any, **__: Any) -> list[str]:
        return sorted(halls)


class FreshAdvice(AdviceCache):
    """No reuse: the tick's advice computed on every evaluation, as before the cache."""

    def for_tick(self, hall: str, now: float) -> Advice | None:
        return self._compute(hall, now)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _day() -> list[tuple[float, str, bytes]]:
    """A month-end peak (queue peaks) and an outage day (a system down, a door counter silent)
    in two halls, as one broker would deliver them."""
    msgs = []
    outage = PROFILES["outage"]
    # The core system's outage and the door counter's silence moved into the first hour, with
    # the month-end peak, so that the day can end at 09:50 (the every-tick rule is slow).
    silent = dataclasses.replace(outage.device_outage, start=hm("09:05"))
    down = dataclasses.replace(outage.system_outage, start=hm("09:12"))
    for profile, seed in (
        (dataclasses.replace(PROFILES["peak"], hall="h1", date=outage.date), 3),
        (dataclasses.replace(outage, hall="h2", device_outage=silent, system_outage=down), 4),
    ):
        day = simulate_day(profile, seed)
        msgs += [(m.at, m.topic, json.dumps(m.payload).encode()) for m in day.messages]
    end = epoch(outage, hm("09:50"))
    return sorted((m for m in msgs if m[0] < end), key=lambda m: m[0])


async def _run(
    db: Path, plan: TickPlan, msgs: list[tuple[float, str, bytes]], span: tuple[float, float]
) -> tuple[list[Transition], set[tuple[Any, ...]], int]:
    clock = Clock()
    settings = settings_for(db)
    d = Daemon(settings, clock=clock)
    d.plan = plan
    if isinstance(plan, EveryHall):
        d._advice = FreshAdvice(
            d._compute_advice, lambda: d.pipeline.changes, lambda: d.plan, lambda *_: True
        )
    transitions: list[Transition] = []
    evaluated = 0
    async with Store(db) as store, Outbox(db) as outbox:
        await d._restore(store)
        d.alerts = alerts = Alerts(d.alert_settings, outbox, clock=clock)
        await alerts.start()
        d.ingest = Ingest(settings, store, d.pipeline.process, d.metrics, clock=clock)
        evaluate = alerts.evaluate

        async def recorded(views: Any) -> list[Transition]:
            nonlocal evaluated
            views = list(views)
            evaluated += len(views)
            out = await evaluate(views)
            transitions.extend(out)
            return out

        alerts.evaluate = recorded  # type: ignore[method-assign]
        i = 0
        clock.now = span[0]
        while clock.now < span[1]:
            clock.now += TICK_S
            j = i
            while j < len(msgs) and msgs[j][0] <= clock.now:
                j += 1
            if j > i:
                await d.ingest.take([(topic, body) for _, topic, body in msgs[i:j]])
                d.lane.drain(publish=False)
                i = j
            await d.tick(clock.now)
    con = sqlite3.connect(db)
    try:
        rows = {tuple(r) for r in con.execute("SELECT key, channel, target FROM alert_outbox")}
    finally:
        con.close()
    return transitions, rows, evaluated


def _key(t: Transition) -> tuple[Any, ...]:
    return (t.hall, t.alert, t.subject, t.state, t.ordinal, t.level)


@pytest.mark.slow
def test_a_day_alerts_as_if_every_hall_were_evaluated_every_tick(tmp_path: Path) -> None:
    """A simulated day through the daemon's tick twice, every hall every tick with fresh advice,
    and only the halls due with advice reused while nothing changed: the same transitions in
    the same order, none later than SWEEP_S + a tick, and only a queue peak's start (its wait
    crossed with no event) later at all; the same outbox."""
    msgs = _day()
    span = (msgs[0][0] - 60, msgs[-1][0] + 600)
    every, every_rows, n_every = asyncio.run(_run(tmp_path / "a.db", EveryHall(), msgs, span))
    due, due_rows, n_due = asyncio.run(_run(tmp_path / "b.db", TickPlan(), msgs, span))
    assert {(t.alert, t.state) for t in every} >= {
        ("queue_peak", "firing"),
        ("system_outage", "escalated"),
        ("device_offline", "firing"),
        ("device_offline", "resolved"),
    }
    assert [_key(t) for t in due] == [_key(t) for t in every]
    for a, b in zip(every, due, strict=True):
        late = b.at - a.at
        assert 0 <= late <= SWEEP_S + TICK_S, (a, b)
        if late:
            assert a.alert == "queue_peak" and a.state == "firing", (a, b)
    assert due_rows == every_rows
    assert n_due < n_every  # and less work (both halls are busy: events nearly every tick)
