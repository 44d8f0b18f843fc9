"""Sends due notifications from the outbox through their channels and records each result.

Notifications for one (channel, target) go one at a time, in order; different targets go in
parallel. One that a rate limit holds back goes back into the outbox, due when it fits, and
is counted (`hallwatch_notifications_rate_limited_total`); it is never dropped.
A notification is marked sent only after its channel accepted it, so a crash between
the two sends it again on restart (at least once; receivers dedupe by the idempotency key).
Each answer is recorded at once, before the lane sends its next notification: at most one per
lane is ever between its receiver and its record (measured: tests/alerts/test_send_window.py).
Stop by cancelling `run`: sends in flight get `drain_s` to finish and be recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from hallwatch.alerts.channels import FAILED, RETRY, SENT, Channel, Result
from hallwatch.alerts.metrics import AlertMetrics
from hallwatch.alerts.outbox import Notification, Outbox, retry_at
from hallwatch.daemon.config.alerts import OutboxSettings

log = logging.getLogger("hallwatch.alerts")


class Dispatcher:
    def __init__(
        self,
        outbox: Outbox,
        channels: Mapping[str, Channel],
        settings: OutboxSettings,
        *,
        clock: Callable[[], float],
        metrics: AlertMetrics | None = None,
        batch: int = 200,
        idle_s: float = 1.0,
        drain_s: float = 5.0,
    ) -> None:
        self._outbox = outbox
        self._channels = channels
        self._s = settings
        self._clock = clock
        self._metrics = metrics
        self._batch = batch
        self._idle_s = idle_s
        self._drain_s = drain_s
        self._inflight: set[asyncio.Task[None]] = set()
        self._last_prune = 0.0
        # Notifications answered and not yet recorded (the at-least-once window of a kill): the
        # tick gives way to them (daemon/pipeline/turns.py). Not during the send itself: a
        # receiver slow to answer must not slow the tick.
        self.answered = 0

    async def run(self) -> None:
        """Send until cancelled."""
        try:
            while True:
                self._outbox.wake.clear()
                await self.step()
                await self._sleep()
        except asyncio.CancelledError:
            await self._drain()
            raise

    async def _drain(self) -> None:
        if not self._inflight:
            return
        _, pending = await asyncio.wait(self._inflight, timeout=self._drain_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        log.info("alert dispatcher stopped; %d sends cut short", len(pending))

    async def _sleep(self) -> None:
        now = self._clock()
        nxt = await self._outbox.next_due()
        wait = self._idle_s if nxt is None else min(self._idle_s, max(0.0, nxt - now))
        if wait <= 0:
            return
        try:
            await asyncio.wait_for(self._outbox.wake.wait(), wait)
        except TimeoutError:
            pass

    async def step(self) -> int:
        """One pass over what is due now; returns how many notifications were handled."""
        now = self._clock()
        notes = await self._outbox.due(now, self._batch)
        lanes: dict[tuple[str, str], list[Notification]] = {}
        for n in notes:
            lanes.setdefault((n.channel, n.target), []).append(n)
        tasks = {asyncio.create_task(self._lane(lane)) for lane in lanes.values()}
        self._inflight = tasks
        if tasks:
            # asyncio.wait, not gather: cancelling this step must not cancel the sends (drain)
            await asyncio.wait(tasks)
            for t in tasks:
                if not t.cancelled() and t.exception() is not None:
                    log.error("alert lane failed: %r", t.exception())
        self._inflight = set()
        await self._housekeeping(self._clock())
        return len(notes)

    async def _housekeeping(self, now: float) -> None:
        if self._metrics is not None:
            self._metrics.outbox = await self._outbox.stats(now)
        if now - self._last_prune > 3600:
            self._last_prune = now
            await self._outbox.prune(now - self._s.keep_sent_s)

    async def _lane(self, notes: list[Notification]) -> None:
        for note in notes:
            channel = self._channels.get(note.channel)
            now = self._clock()
            if channel is None:
                await self._record(note, Result(FAILED, f"no channel {note.channel!r}"), now)
                continue
            ready = channel.ready_at(note, now)
            if ready > now:
                await self._outbox.defer(note.seq, ready)
                if self._metrics is not None:
                    self._metrics.rate_limited.labels(note.channel).inc()
                continue
            await self._outbox.sending(note.seq)
            try:
                result = await channel.send(note)
            except Exception as err:  # a bug in a channel must not stop delivery of the rest
                log.exception("channel %s raised", note.channel)
                result = Result(RETRY, f"channel error {type(err).__name__}")
            self.answered += 1
            try:
                await self._record(note, result, self._clock())
            finally:
                self.answered -= 1

    async def _record(self, note: Notification, result: Result, now: float) -> None:
        outcome = result.outcome
        if outcome == SENT:
            await self._outbox.mark_sent(note.seq, now)
        elif outcome == RETRY and now - note.created < self._s.dead_after_s:
            due = retry_at(
                now,
                note.attempts + 1,
                base=self._s.retry_base_s,
                cap=self._s.retry_cap_s,
                retry_after=result.retry_after,
            )
            await self._outbox.mark_retry(note.seq, due, result.detail)
            log.warning(
                "alert %s via %s: %s; retry in %.0f s",
                note.key,
                note.channel,
                result.detail,
                due - now,
                extra={"event": note.key},
            )
        else:
            await self._outbox.mark_dead(note.seq, now, result.detail)
            log.error(
                "alert %s via %s dead-lettered after %d attempts: %s",
                note.key,
                note.channel,
                note.attempts + 1,
                result.detail,
                extra={"event": note.key},
            )
            if self._metrics is not None:
                self._metrics.dead_letters.inc()
                self._metrics.notifications.labels(note.channel, "dead").inc()
        if self._metrics is not None:
            label = "throttled" if result.throttled else outcome
            self._metrics.notifications.labels(note.channel, label).inc()
