"""The estimator lane: in order, in slices of the event loop, its back-pressure in metrics."""

from __future__ import annotations

import asyncio

from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.estimate.model import EstimateOut, Estimator
from hallwatch.daemon.pipeline.lane import DEGRADE_BACKLOG, EstimateLane
from hallwatch.daemon.pipeline.process import Faults, Pipeline
from prometheus_client.core import Metric

from tests.factories import at, issued, window_ev

T0 = at("2026-11-27T09:00")


class Ticks:
    """A timer that moves one second each time it is read."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


def _lane(
    slice_s: float, timer: Ticks | None = None
) -> tuple[EstimateLane, Pipeline, list[EstimateOut], list[float]]:
    state = HallsState()
    now = [T0 + 1]
    faults = Faults(lambda: now[0])
    outs: list[EstimateOut] = []
    lane = EstimateLane(
        Estimator(samples=4),
        lambda: state,
        outs.append,
        lambda: now[0],
        faults=faults,
        slice_s=slice_s,
        timer=timer or Ticks(),
    )
    return lane, Pipeline(lambda: state, lane.push, faults), outs, now


def _values(families: list[Metric]) -> dict[str, float]:
    return {s.name: s.value for f in families for s in f.samples}


def test_one_turn_feeds_events_until_its_slice_is_used() -> None:
    """A turn feeds queued events until the slice has passed, not one event a turn: with a
    timer moving 1 s a read and a 5 s slice, a turn feeds 5 of 12 events, in order."""
    lane, pipe, outs, _ = _lane(5.0)
    pipe.process(window_ev("w1", "open", T0))
    for i in range(11):
        pipe.process(issued(f"A{i}", T0 + i))
    lane.step()
    assert lane.backlog == 12 - 5
    assert [o.ticket for o in outs] == ["A0", "A1", "A2", "A3"]
    lane.step()
    lane.step()
    assert lane.backlog == 0
    assert [o.ticket for o in outs] == [f"A{i}" for i in range(11)]


def test_a_turn_feeds_at_least_one_event() -> None:
    """A slice already used up still feeds one event a turn, so the lane always advances."""
    lane, pipe, outs, _ = _lane(0.0)
    pipe.process(window_ev("w1", "open", T0))
    pipe.process(issued("A1", T0))
    lane.step()
    assert lane.backlog == 1
    lane.step()
    assert [o.ticket for o in outs] == ["A1"]


def test_backlog_lag_and_degraded_estimates_are_in_the_metrics() -> None:
    """The lane's backlog and the age of its oldest event are gauges; tickets that got a
    queue-length estimate because the lane was over DEGRADE_BACKLOG behind are counted, and
    only those (not the window event, nor the tickets estimated in full)."""
    lane, pipe, outs, now = _lane(1e9)
    pipe.process(window_ev("w1", "open", T0))
    n = DEGRADE_BACKLOG + 20
    for i in range(n):
        pipe.process(issued(f"A{i}", T0 + i / 100))
    now[0] += 7.5
    before = _values(list(lane.metrics(now[0])))
    assert before["hallwatch_estimate_backlog"] == n + 1
    assert before["hallwatch_estimate_lag_seconds"] == 7.5
    assert before["hallwatch_estimates_degraded_total"] == 0
    lane.drain()
    after = _values(list(lane.metrics(now[0])))
    assert after["hallwatch_estimate_backlog"] == 0
    assert after["hallwatch_estimate_lag_seconds"] == 0
    # Queued behind the window event: A0 leaves 219 behind it, A19 leaves 200.
    assert after["hallwatch_estimates_degraded_total"] == 19
    assert len(outs) == n


def test_run_feeds_everything_pushed_while_it_waits() -> None:
    """The lane's task wakes on a push and feeds the whole queue, slice after slice."""

    async def go() -> list[EstimateOut]:
        lane, pipe, outs, _ = _lane(3.0)
        task = asyncio.create_task(lane.run())
        pipe.process(window_ev("w1", "open", T0))
        for i in range(20):
            pipe.process(issued(f"A{i}", T0 + i))
        for _ in range(100):
            await asyncio.sleep(0)
            if lane.backlog == 0:
                break
        task.cancel()
        return outs

    assert [o.ticket for o in asyncio.run(go())] == [f"A{i}" for i in range(20)]
