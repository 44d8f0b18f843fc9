"""Sliding-window rate limits, one window per key (a robot, a phone number, a webhook)."""

from __future__ import annotations

from collections import OrderedDict, deque

MAX_KEYS = 10_000  # recipients remembered; the least recently used beyond are forgotten


class SlidingWindow:
    """At most `limit` events in any window of `window_s` seconds."""

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque()

    def ready_at(self, now: float) -> float:
        """The earliest time, not before `now`, at which one more event is allowed."""
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()
        at = now
        if len(self._times) >= self.limit:
            at = self._times[len(self._times) - self.limit] + self.window_s
        return at

    def try_take(self, now: float) -> float | None:
        """Record an event at `now` if allowed and return None; else when to come back."""
        at = self.ready_at(now)
        if at > now:
            return at
        self._times.append(now)
        return None


class RateLimits:
    """One `SlidingWindow` per key, made on first use; at most `max_keys` kept (call-back SMS
    go to many numbers once each)."""

    def __init__(self, limit: int, window_s: float, *, max_keys: int = MAX_KEYS) -> None:
        self.limit, self.window_s, self.max_keys = limit, window_s, max_keys
        self._windows: OrderedDict[str, SlidingWindow] = OrderedDict()

    def __getitem__(self, key: str) -> SlidingWindow:
        w = self._windows.pop(key, None)
        if w is None:
            w = SlidingWindow(self.limit, self.window_s)
        self._windows[key] = w  # most recently used last
        while len(self._windows) > self.max_keys:
            self._windows.popitem(last=False)
        return w
