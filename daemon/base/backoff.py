"""Reconnect delays: capped exponential backoff with full jitter."""

from __future__ import annotations

import random


def delay(attempt: int, *, base: float, cap: float, rand: random.Random | None = None) -> float:
    """Seconds to wait before reconnect attempt `attempt` (0 for the first retry).

    Full jitter (uniform between 0 and the capped exponential) spreads a hall's worth of
    clients that lost the same broker, so they do not all come back in the same instant.
    The result is never below `base / 2`, so a dead broker is not hammered in a tight loop.
    """
    ceiling = min(cap, base * (2 ** min(attempt, 32)))
    r: float = (rand or random).random()
    return float(max(base / 2, ceiling * r))
