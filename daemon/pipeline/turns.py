"""Who goes first on the event loop: an event's way in (receive, store, acknowledge, apply,
estimate) before the tick's slices of work (views, advice, metrics text).

The tick and the estimator's lane hand the loop back between slices of their work. Handing it
back with `sleep(0)` is not enough: an event needs four or five turns of the loop to get from the
socket to its estimate (the client reads it, ingest takes the batch, the store's thread commits
it, ingest applies it, the lane estimates it), and each of those turns also ran a 10-30 ms slice
of the tick and one of the lane, so under load an estimate waited 150-250 ms (#14). `give_way`
lets those go first: after its slice a background task waits while anything it gives way to is
busy, for at most `max_wait_s` (so a flood slows the tick down but never stops it). The time it
waited is counted, the back-pressure visible in /metrics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, Metric

GiveWay = Callable[[], Awaitable[None]]  # what a background task awaits between its slices
MAX_WAIT_S = 0.1  # a background slice waits this long at most for the way to clear
POLL_S = 0.002  # ... looking again this often


async def next_turn() -> None:
    """Hand the loop back for one turn (no one to give way to: tests, replays)."""
    await asyncio.sleep(0)


class Turns:
    """One background task's manners: `await turns.give_way()` between its slices."""

    def __init__(
        self,
        name: str,
        *first: Callable[[], bool],
        max_wait_s: float = MAX_WAIT_S,
        poll_s: float = POLL_S,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.name = name
        self._first = first  # each says whether that part of the way is busy
        self._max_wait_s = max_wait_s
        self._poll_s = poll_s
        self._timer = timer
        self.waited_s = 0.0
        self.cut_short = 0  # waits that ended at max_wait_s with the way still busy

    def busy(self) -> bool:
        return any(f() for f in self._first)

    async def give_way(self) -> None:
        """Hand the loop back, and keep it away while the way in is busy. Two turns first: in
        the first the client reads what the socket holds (a reader runs after the tasks that
        were already ready), so only in the second does `busy` see it."""
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        if not self.busy():
            return
        started = self._timer()
        while True:
            await asyncio.sleep(self._poll_s)
            held = self._timer() - started
            if not self.busy():
                break
            if held >= self._max_wait_s:
                self.cut_short += 1
                break
        self.waited_s += held


def turn_metrics(turns: Iterable[Turns]) -> Iterator[Metric]:
    """The waits of each background task, one sample per task."""
    waited = CounterMetricFamily(
        "hallwatch_gave_way_seconds",
        "Time background work (the tick, the estimator lane) waited for events on their way "
        "in (receive, store, apply, estimate) to go first.",
        labels=["task"],
    )
    short = CounterMetricFamily(
        "hallwatch_gave_way_cut_short",
        "Waits that ended after 100 ms with events still on their way in: the daemon is near "
        "its capacity; background work is slowed, never stopped.",
        labels=["task"],
    )
    for t in turns:
        waited.add_metric([t.name], t.waited_s)
        short.add_metric([t.name], t.cut_short)
    yield waited
    yield short
