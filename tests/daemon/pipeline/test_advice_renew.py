"""The tick's advice renewal (pipeline/schedule.py `AdviceCache.renew`): a forward simulation a
step giving way between steps to events on their way in, and a budget per tick past which halls keep
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
from hallwatch.daemon.pipeline.turns import GiveWay, Turns, next_turn

STEP_S = RENEW_BUDGET_S * 0.3  # one step's work; a hall's advice is two steps


def _advice(hall: str, now: float) -> Advice:
    return Advice(hall, now, 1200.0, (), now + 3600, None, 0.0, 0.0)


def _cache(
    changes: Changes,
    log: list[tuple[str, float]],
    give_way: GiveWay = next_turn,
    stepped: list[float] | None = None,
) -> AdviceCache:
    def steps(hall: str, now: float) -> Generator[None, None, Advice]:
        for _ in range(2):
            if stepped is not None:
                stepped.append(time.perf_counter())
            time.sleep(STEP_S)  # a forward simulation's CPU
            yield
        log.append((hall, now))
        return _advice(hall, now)

    def compute(hall: str, now: float) -> Advice:
        raise AssertionError("the tick's advice is renewed by steps, never at once")

    plan = TickPlan()
    return AdviceCache(compute, lambda: changes, lambda: plan, lambda *_: True, steps, give_way)


def test_renewal_gives_way_between_simulations() -> None:
    """While one hall's advice is renewed (two steps of STEP_S) and an event is on its way in
    (hops 5 ms apart, the way busy until they end), the renewal waits between its steps until
    the event is through: every hop runs before the second step, none waits behind it."""
    changes, log = Changes(), []
    changes.touch("h1")
    hops: list[float] = []
    stepped: list[float] = []
    busy = [True]

    async def main() -> None:
        turns = Turns("tick", lambda: busy[0], max_wait_s=1.0, poll_s=0.001)
        cache = _cache(changes, log, turns.give_way, stepped)

        async def event() -> None:
            for _ in range(6):
                hops.append(time.perf_counter())
                await asyncio.sleep(0.005)  # the event's next hop, ready 5 ms later
            busy[0] = False

        task = asyncio.create_task(event())
        await asyncio.sleep(0)
        await cache.renew(["h1"], 100.0)
        await task

    asyncio.run(main())
    assert log == [("h1", 100.0)]
    assert len(stepped) == 2 and all(h < stepped[1] for h in hops)


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
