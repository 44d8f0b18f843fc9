"""Our own rate limits around any channel: per recipient and for the channel as a whole.

The dispatcher asks `ready_at` before each send; a notification that does not fit yet is put
back in the outbox with that time as its due time (and counted), so a flood waits instead of
reaching phones, robots or webhooks at once, and nothing is dropped. The provider's own pauses
(WeCom's 45009) still come from the wrapped channel's `ready_at`.
"""

from __future__ import annotations

from collections.abc import Callable

from hallwatch.alerts.channels import RETRY, Channel, Result
from hallwatch.alerts.outbox import Notification
from hallwatch.alerts.ratelimit import RateLimits, SlidingWindow
from hallwatch.daemon.config.alerts import ChannelLimits


class RateLimited:
    """`inner`, held to `limits`."""

    def __init__(self, inner: Channel, limits: ChannelLimits, *, clock: Callable[[], float]):
        self.name = inner.name
        self.inner = inner
        self.limits = limits
        self.recipients = RateLimits(limits.per_recipient, limits.recipient_window_s)
        self.total = SlidingWindow(limits.total, limits.total_window_s)
        self._clock = clock

    def ready_at(self, note: Notification, now: float) -> float:
        return max(
            self.inner.ready_at(note, now),
            self.recipients[note.target].ready_at(now),
            self.total.ready_at(now),
        )

    async def send(self, note: Notification) -> Result:
        now = self._clock()
        later = self.ready_at(note, now)
        if later > now:  # the dispatcher asked first; this guards other callers
            return Result(RETRY, "rate limit", retry_after=later - now, throttled=True)
        self.recipients[note.target].try_take(now)
        self.total.try_take(now)
        return await self.inner.send(note)
