"""Bounds on what a client can make the HTTP side do: a per-client rate limit on mutating
requests and a deadline on reading a request body. (The one JSON body reader, which answers
400 for anything that is not JSON, is `hallwatch.daemon.base.jsonbody`.)

Each client address gets a token bucket of `rate_per_minute` tokens that refills continuously;
a POST, PUT, PATCH or DELETE takes one, and so does a read of an expensive path (`/api/report`
recomputes days of history); without one the answer is 429 with `Retry-After` (whole seconds
until a token is back). Other reads are never limited: Prometheus and the hall screens poll.
The table of clients is bounded, so a flood of source addresses cannot grow memory without end.

`FailedLookups` bounds guessing on the acknowledgement page (where the link or code is the
credential): each client address may fail `ACK_FAILURES_PER_MINUTE` lookups (a bucket of that
many, refilling continuously); with none left, every lookup from it is refused with 429 and
`Retry-After` until one is back, valid or not. Lookups that succeed take nothing.

Bodies are capped at `client_max_size` (413) and must arrive within `read_timeout_s` (408); the
request line and headers have the same deadline through aiohttp's `keepalive_timeout`, which
(aiohttp 3.14.4 on) runs from the moment a connection opens until its first request is whole.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EXPENSIVE = ("/api/report",)  # reads that cost seconds of CPU each
MAX_CLIENTS = 10_000
ACK_FAILURES_PER_MINUTE = 10  # failed ack-link/code lookups per client address

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RateLimiter:
    """Token buckets per client key; `take(key, now)` returns 0 if allowed, else the seconds
    until the next token."""

    def __init__(self, per_minute: int, *, max_clients: int = MAX_CLIENTS) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.capacity = float(per_minute)
        self.refill_per_s = per_minute / 60.0
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: tokens, at

    def take(self, key: str, now: float) -> float:
        tokens, at = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - at) * self.refill_per_s)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.refill_per_s
        self._buckets[key] = (tokens, now)  # most recently used last
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)  # forget the longest idle (a full bucket anyway)
        return wait

    def peek(self, key: str, now: float) -> float:
        """Like `take`, without taking: 0 if a token is there, else the seconds until one."""
        tokens, at = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + max(0.0, now - at) * self.refill_per_s)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.refill_per_s


class FailedLookups:
    """Per client address, at most `per_minute` failed lookups (of a secret such as an ack
    link or code); `wait(client)` is 0 while the client may still look up, else the whole
    seconds until it may (for `Retry-After`); `failed(client)` counts one failure."""

    def __init__(
        self,
        per_minute: int = ACK_FAILURES_PER_MINUTE,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bucket, self.clock = RateLimiter(per_minute), clock

    def wait(self, client: str) -> int:
        wait = self.bucket.peek(client, self.clock())
        return max(1, math.ceil(wait)) if wait > 0 else 0

    def failed(self, client: str) -> None:
        self.bucket.take(client, self.clock())


def rate_limit(per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> Middleware:
    """The middleware; `per_minute` 0 turns it off."""
    limiter = RateLimiter(per_minute) if per_minute > 0 else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if limiter is not None and (
            request.method in MUTATING or request.path.startswith(EXPENSIVE)
        ):
            wait = limiter.take(request.remote or "?", clock())
            if wait > 0:
                return web.json_response(
                    {"error": "too many requests"},
                    status=429,
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        return await handler(request)

    return middleware


def body_deadline(timeout_s: float) -> Middleware:
    """Read a request's whole body within `timeout_s` before its handler runs (408 after it,
    and the connection is closed); the handler then reads it from memory."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.can_read_body:
            try:
                async with asyncio.timeout(timeout_s):
                    await request.read()
            except TimeoutError:
                resp = web.json_response(
                    {"error": "timeout", "message": f"请求正文未在 {timeout_s:g} 秒内收齐"},
                    status=408,
                    dumps=_dumps,
                )
                resp.force_close()
                return resp
        return await handler(request)

    return middleware


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
