"""Hall views over a recorded day, for `hallwatch replay --alerts-out`.

The day runs through the same parser, state core and estimator as the live daemon, with event
time as the clock; every `tick_s` of event time each hall is looked at, as the daemon's alert
tick does, and the views go to the rule engine. Nothing is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from hallwatch.alerts.view import HallView
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.estimate.advice import Advice
from hallwatch.daemon.estimate.model import Estimator
from hallwatch.daemon.offline.replay import accepted_events
from hallwatch.daemon.pipeline.process import offline
from hallwatch.daemon.pipeline.views import SETTLE_S, all_views

# The estimator's staffing advice is recomputed at most this often (event time): the wait it
# gives moves slowly, and computing it at every tick of a whole day would dominate the replay.
ADVICE_EVERY_S = 30.0


def views_of_day(
    messages: Iterable[tuple[str, bytes]],
    *,
    root: str = "hall",
    tz: str = "Asia/Shanghai",
    estimator: Estimator | None = None,
    calendar: WorkCalendar | None = None,
    heartbeat_timeout_s: float = 90.0,
    tick_s: float = 10.0,
) -> Iterator[HallView]:
    """Yield a view of every hall at each tick of event time between the day's events."""
    state = HallsState(tz=tz)
    est = estimator or Estimator(tz=tz)
    cal = calendar or WorkCalendar()
    next_tick: float | None = None
    cache: dict[str, tuple[float, Advice]] = {}
    step = offline(state, est)
    for event in accepted_events(messages, root):
        if next_tick is None:
            next_tick = event.ts
        while next_tick <= event.ts:
            yield from _look(state, est, cal, next_tick, heartbeat_timeout_s, cache)
            next_tick += tick_s
        step(event)
    if next_tick is not None:
        # One more look after the last event, so rules waiting on a `for` can settle.
        for _ in range(int(SETTLE_S / tick_s)):
            yield from _look(state, est, cal, next_tick, heartbeat_timeout_s, cache)
            next_tick += tick_s


def _look(
    state: HallsState,
    est: Estimator,
    cal: WorkCalendar,
    now: float,
    heartbeat: float,
    cache: dict[str, tuple[float, Advice]],
) -> list[HallView]:
    def advise(hall: str) -> Advice:
        hit = cache.get(hall)
        if hit is None or now - hit[0] >= ADVICE_EVERY_S:
            hit = cache[hall] = (now, est.advice(state, hall, now))
        return hit[1]

    return all_views(state, now, advise, heartbeat, cal)
