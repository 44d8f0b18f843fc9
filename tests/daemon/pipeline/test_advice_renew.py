"""The tick's advice renewal (pipeline/schedule.py `AdviceCache.renew`): a forward simulation a
step with the event loop handed back between steps, and a budget per tick past which halls keep
their advice, oldest renewed first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator

from hallwatch.daemon.estimate.advice import Advice
from hallwatch.daemon.pipeline.schedule import (
    ADVICE_MIN_S,
    RENEW_BUDGET_S,
    AdviceCache,
    Changes,
    TickPlan,
)

STEP_S = RENEW_BUDGET_S * 0.3  # one step's work; a hall's advice is two steps


def _advice(hall: str, now: float) -> Advice:
    return Advice(hall, now, 1200.0, (), now + 3600, None, 0.0, 0.0)


def _cache(changes: Changes, log: list[tuple[str, float]]) -> AdviceCache:
    def steps(hall: str, now: float) -> Generator[None, None, Advice]:
        for _ in range(2):
            time.sleep(STEP_S)  # a forward simulation's CPU
            yield
        log.append((hall, now))
        return _advice(hall, now)

    def compute(hall: str, now: float) -> Advice:
        raise AssertionError("the tick's advice is renewed by steps, never at once")

    plan = TickPlan()
    return AdviceCache(compute, lambda: changes, lambda: plan, lambda *_: True, steps)


def test_renewal_hands_the_loop_back_between_simulations() -> None:
    """While one hall's advice is renewed (two steps of STEP_S), another task runs between the
    steps, and as often as it would in a pause as long as the step: the event loop is never
    held for a whole advice, and an event's hops do not each wait behind a step."""
    changes, log = Changes(), []
    changes.touch("h1")
    cache = _cache(changes, log)
    ran: list[float] = []

    async def main() -> None:
        async def other() -> None:
            while True:
                ran.append(time.perf_counter())
                await asyncio.sleep(0.005)  # an event's next hop, ready 5 ms later

        task = asyncio.create_task(other())
        await asyncio.sleep(0)
        started = time.perf_counter()
        await cache.renew(["h1"], 100.0)
        ended = time.perf_counter()
        task.cancel()
        # It pauses as long as it held the loop: many hops run in the pause, not one a step.
        assert sum(started < t < ended for t in ran) >= 5

    asyncio.run(main())
    assert log == [("h1", 100.0)] and cache.for_tick("h1", 100.0) is not None


def test_past_the_budget_halls_keep_their_advice_and_the_oldest_go_first() -> None:
    """Three changed halls whose advice is due: renewed oldest first until RENEW_BUDGET_S is
    spent (a hall with no advice yet gets it first, whatever the budget), the rest counted
    `behind` and renewed, oldest first, on the next tick."""
    changes, log = Changes(), []
    cache = _cache(changes, log)
    for hall, at in (("c", 10.0), ("a", 12.0), ("b", 11.0)):
        changes.touch(hall)
        asyncio.run(cache.renew([hall], at))
    log.clear()
    for hall in ("a", "b", "c", "new"):
        changes.touch(hall)
    now = 12.0 + ADVICE_MIN_S
    asyncio.run(cache.renew(["a", "b", "c", "new"], now))
    # "new" first (no advice at all), then c (the oldest): the budget is spent.
    assert [h for h, _ in log] == ["new", "c"]
    assert cache.behind == 2
    assert cache.for_tick("a", now).at == 12.0  # type: ignore[union-attr]  # kept, not computed
    log.clear()
    asyncio.run(cache.renew(["a", "b", "c", "new"], now + 2))
    assert [h for h, _ in log] == ["b", "a"] and cache.behind == 0
