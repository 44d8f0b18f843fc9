"""Background work gives way to events on their way in (pipeline/turns.py): it waits while
the way is busy, never longer than its bound, and counts what it waited."""

from __future__ import annotations

import asyncio
import time

from hallwatch.daemon.pipeline.turns import Turns, turn_metrics


def test_gives_way_until_the_way_is_clear() -> None:
    """While an event's hops are busy (40 ms of them), `give_way` does not return; it returns
    soon after they end, and the wait is counted."""
    busy = [True]

    async def main() -> float:
        turns = Turns("tick", lambda: busy[0], max_wait_s=1.0, poll_s=0.001)

        async def hops() -> None:
            await asyncio.sleep(0.04)
            busy[0] = False

        task = asyncio.create_task(hops())
        started = time.perf_counter()
        await turns.give_way()
        waited = time.perf_counter() - started
        await task
        assert turns.cut_short == 0 and 0.03 < turns.waited_s < 0.5
        return waited

    waited = asyncio.run(main())
    assert 0.035 <= waited < 0.5


def test_a_way_that_never_clears_only_slows_background_work_down() -> None:
    """A flood (the way always busy): each `give_way` ends after `max_wait_s`, counted as cut
    short, so the tick goes on at a slower pace instead of stopping."""

    async def main() -> Turns:
        turns = Turns("tick", lambda: True, max_wait_s=0.02, poll_s=0.001)
        for _ in range(3):
            await turns.give_way()
        return turns

    turns = asyncio.run(main())
    assert turns.cut_short == 3 and 0.06 <= turns.waited_s < 1.0


def test_a_clear_way_costs_two_turns_of_the_loop_and_no_wait() -> None:
    """Nothing busy: `give_way` hands the loop back for two turns (so a reader woken by the
    socket runs, and `busy` can see what it read) and counts no wait."""
    order: list[str] = []

    async def main() -> Turns:
        turns = Turns("estimates", lambda: False)

        async def other() -> None:
            order.append("other-1")
            await asyncio.sleep(0)
            order.append("other-2")

        task = asyncio.create_task(other())
        await turns.give_way()
        order.append("back")
        await task
        return turns

    turns = asyncio.run(main())
    assert order == ["other-1", "other-2", "back"] and turns.waited_s == 0.0


def test_metrics_name_each_task() -> None:
    """The two families carry one sample per task, so ops see which work is held back."""
    a, b = Turns("estimates"), Turns("tick")
    b.waited_s, b.cut_short = 1.5, 2
    fams = {f.name: {s.labels["task"]: s.value for s in f.samples} for f in turn_metrics((a, b))}
    assert fams["hallwatch_gave_way_seconds"] == {"estimates": 0.0, "tick": 1.5}
    assert fams["hallwatch_gave_way_cut_short"] == {"estimates": 0.0, "tick": 2}
