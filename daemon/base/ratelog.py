"""Logging with a rate limit: one line per key per interval, saying how many were held back."""

from __future__ import annotations

import logging
from collections.abc import Mapping


class RateLimitedLog:
    """At most one line per key per `every` seconds of the clock passed in (`now`); the next
    line after a quiet spell says how many of that key were suppressed meanwhile."""

    def __init__(self, logger: logging.Logger, every: float = 10.0, max_keys: int = 1000) -> None:
        self._log = logger
        self._every = every
        self._max_keys = max_keys  # keys come from our own labels, but a bound costs nothing
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(
        self,
        level: int,
        key: str,
        now: float,
        msg: str,
        *args: object,
        exc_info: BaseException | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> bool:
        """Log unless `key` logged within the interval; returns whether a line was written."""
        last = self._last.get(key)
        if last is not None and 0 <= now - last < self._every:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        if last is None and len(self._last) >= self._max_keys:
            self._last.clear()
        held = self._suppressed.pop(key, 0)
        self._last[key] = now
        if held:
            msg += f" ({held} more suppressed)"
        self._log.log(level, msg, *args, exc_info=exc_info, extra=extra)
        return True

    def warn(
        self,
        key: str,
        now: float,
        msg: str,
        *args: object,
        extra: Mapping[str, object] | None = None,
    ) -> bool:
        return self.log(logging.WARNING, key, now, msg, *args, extra=extra)
