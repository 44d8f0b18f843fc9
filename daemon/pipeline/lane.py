"""The estimator's lane: applied events reach the estimator in order, off the ingest path.

An estimate for an issued ticket is a forward simulation (milliseconds in a busy hall), so the
ingest batch only queues the event; this lane feeds the estimator in arrival order and hands
each estimate to the output publisher. Before a snapshot the lane is drained, so the
estimator's learned data matches the state's `seq`.

The lane works in slices: each turn on the event loop it feeds events until `slice_s` has
passed, then hands the loop back. (It used to feed one event a turn: while the alert tick held
the loop in 20-100 ms steps, the lane advanced one event per step, a heartbeat as slowly as a
ticket, and estimates queued for seconds at 100 events/s.) Its back-pressure is visible in
`metrics()`: the backlog, the age of the oldest queued event, and the estimates degraded to a
queue-length estimate because the lane fell behind.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator

from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.estimate.model import EstimateOut, Estimator
from hallwatch.daemon.pipeline.process import Faults, estimate
from hallwatch.daemon.pipeline.turns import GiveWay, next_turn
from hallwatch.sensors.events import Event, TicketEvent
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

DEGRADE_BACKLOG = 200
STALE_AFTER_S = 60.0
SLICE_S = 0.005  # the lane holds the event loop at most this long (plus one estimate) a turn;
# 10 ms: p99 publish → estimate 47.7 ms at 1,000 events/s, 5 ms: 36.9 (#14)


class EstimateLane:
    def __init__(
        self,
        estimator: Estimator,
        state: Callable[[], HallsState],
        publish: Callable[[EstimateOut], None],
        clock: Callable[[], float],
        stale_s: float = STALE_AFTER_S,
        *,
        faults: Faults,
        slice_s: float = SLICE_S,
        timer: Callable[[], float] = time.perf_counter,
        give_way: GiveWay = next_turn,
    ) -> None:
        self.estimator = estimator
        self.give_way = give_way  # between slices: ingest goes first (pipeline/turns.py)
        self._faults = faults
        self._state = state
        self._publish = publish
        self._clock = clock
        self._stale_s = stale_s
        self._slice_s = slice_s
        self._timer = timer
        # (event, when it was queued by `clock`): the queued time gives the lane's lag.
        self._pending: deque[tuple[Event, float]] = deque()
        self.degraded = 0  # events estimated without sampling because the lane fell behind
        self._wake = asyncio.Event()

    def push(self, event: Event) -> None:
        self._pending.append((event, self._clock()))
        self._wake.set()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def lag_s(self, now: float) -> float:
        """How long the oldest queued event has waited (0: nothing queued)."""
        return max(0.0, now - self._pending[0][1]) if self._pending else 0.0

    def _one(self, publish: bool = True) -> None:
        event, _ = self._pending.popleft()
        est = self.estimator
        # Falling behind (a burst, a flood), or a ticket issued long ago (a backlog after a
        # restart: its customer has long had the ticket): a queue-length estimate will do.
        est.quick = len(self._pending) > DEGRADE_BACKLOG or self._clock() - event.ts > self._stale_s
        self.degraded += est.quick and isinstance(event, TicketEvent) and event.type == "issued"
        try:
            outs = estimate(est, event, self._state(), self._faults)
        finally:
            est.quick = False
        if publish:
            for out in outs:
                if isinstance(out, EstimateOut):
                    self._publish(out)

    def drain(self, *, publish: bool = True) -> None:
        """Feed every queued event now: before a snapshot (estimates still published), and
        after each replayed event at start-up (not published: those tickets had theirs)."""
        while self._pending:
            self._one(publish)

    def step(self) -> None:
        """One turn: feed queued events until the slice is used up (at least one)."""
        until = self._timer() + self._slice_s
        while self._pending:
            self._one()
            if self._timer() >= until:
                break

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                self.step()
                await self.give_way()

    def metrics(self, now: float) -> Iterator[Metric]:
        """The lane's back-pressure, for /metrics."""
        yield GaugeMetricFamily(
            "hallwatch_estimate_backlog",
            "Applied events queued for the estimator (past 200, tickets get a queue-length "
            "estimate).",
            value=self.backlog,
        )
        yield GaugeMetricFamily(
            "hallwatch_estimate_lag_seconds",
            "How long the oldest event queued for the estimator has waited.",
            value=self.lag_s(now),
        )
        yield CounterMetricFamily(
            "hallwatch_estimates_degraded",
            "Issued tickets given a queue-length estimate instead of the forward simulation: "
            "the estimator lane was behind, or the ticket was issued over a minute before.",
            value=self.degraded,
        )
