"""The estimator's lane: applied events reach the estimator in order, off the ingest path.

An estimate for an issued ticket is a forward simulation (milliseconds in a busy hall), so the
ingest batch only queues the event; this lane feeds the estimator in arrival order, yielding to
the event loop between events, and hands each estimate to the output publisher. Before a
snapshot the lane is drained, so the estimator's learned data matches the state's `seq`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.estimate.model import EstimateOut, Estimator
from hallwatch.daemon.pipeline.process import Faults, estimate
from hallwatch.sensors.events import Event

DEGRADE_BACKLOG = 200
STALE_AFTER_S = 60.0


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
    ) -> None:
        self.estimator = estimator
        self._faults = faults
        self._state = state
        self._publish = publish
        self._clock = clock
        self._stale_s = stale_s
        self._pending: deque[Event] = deque()
        self.degraded = 0  # events estimated without sampling because the lane fell behind
        self._wake = asyncio.Event()

    def push(self, event: Event) -> None:
        self._pending.append(event)
        self._wake.set()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    def _one(self, publish: bool = True) -> None:
        event = self._pending.popleft()
        est = self.estimator
        # Falling behind (a burst, a flood), or a ticket issued long ago (a backlog after a
        # restart: its customer has long had the ticket): a queue-length estimate will do.
        est.quick = len(self._pending) > DEGRADE_BACKLOG or self._clock() - event.ts > self._stale_s
        self.degraded += est.quick
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

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                self._one()
                await asyncio.sleep(0)
