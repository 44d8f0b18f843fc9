"""Per-key sliding-window rate limits (WeCom robots: 20 messages in any 60 seconds)."""

from __future__ import annotations

from collections import deque


class SlidingWindow:
    """At most `limit` events in any window of `window_s` seconds, plus an optional pause."""

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._paused_until = 0.0

    def ready_at(self, now: float) -> float:
        """The earliest time, not before `now`, at which one more event is allowed."""
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()
        at = now
        if len(self._times) >= self.limit:
            at = self._times[len(self._times) - self.limit] + self.window_s
        return max(at, self._paused_until)

    def try_take(self, now: float) -> float | None:
        """Record an event at `now` if allowed and return None; else when to come back."""
        at = self.ready_at(now)
        if at > now:
            return at
        self._times.append(now)
        return None

    def pause(self, until: float) -> None:
        """Allow nothing before `until` (the provider told us to slow down)."""
        self._paused_until = max(self._paused_until, until)


class RateLimits:
    """One `SlidingWindow` per key, made on first use."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._windows: dict[str, SlidingWindow] = {}

    def __getitem__(self, key: str) -> SlidingWindow:
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = SlidingWindow(self.limit, self.window_s)
        return w
