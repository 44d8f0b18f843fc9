"""Notification channels: each a small class with `ready_at` and `async send`.

A channel never raises for a delivery problem; it returns a `Result`: `sent`, `retry` (a
transient failure: timeout, 5xx, throttled) or `failed` (permanent: the outbox dead-letters it).
Details never contain URLs or secrets: a WeCom robot URL carries its key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from hallwatch.alerts.outbox import Notification

SENT, RETRY, FAILED = "sent", "retry", "failed"


@dataclass(frozen=True, slots=True)
class Result:
    outcome: str  # sent | retry | failed
    detail: str = ""
    retry_after: float | None = None
    throttled: bool = False  # the provider asked us to slow down (45009, 429, ...)


class Channel(Protocol):
    name: str

    def ready_at(self, note: Notification, now: float) -> float:
        """When `note` may be sent (now, unless a rate limit says later)."""
        ...

    async def send(self, note: Notification) -> Result: ...


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        import json

        try:
            return json.loads(self.body)
        except ValueError:
            return None


async def request(
    session: aiohttp.ClientSession, method: str, url: str, *, timeout_s: float, **kw: Any
) -> Reply | Result:
    """One HTTP exchange; transport errors become a `retry` Result without the URL."""
    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout_s), **kw
        ) as resp:
            body = await resp.read()
            return Reply(resp.status, body, dict(resp.headers))
    except TimeoutError:
        return Result(RETRY, f"timeout after {timeout_s:g} s")
    except aiohttp.ClientConnectorError as err:
        return Result(RETRY, f"cannot connect: {err.os_error.strerror or type(err.os_error)}")
    except (aiohttp.ClientError, asyncio.IncompleteReadError) as err:
        return Result(RETRY, type(err).__name__)


def retry_after(reply: Reply) -> float | None:
    value = reply.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def by_status(reply: Reply, what: str) -> Result:
    """The usual HTTP reading: 2xx sent; 408, 425, 429 and 5xx retry; other 4xx failed."""
    if 200 <= reply.status < 300:
        return Result(SENT, f"{what} {reply.status}")
    detail = f"{what} HTTP {reply.status}: {reply.body[:200].decode('utf-8', 'replace')}"
    if reply.status in (408, 425, 429) or reply.status >= 500:
        return Result(RETRY, detail, retry_after(reply), throttled=reply.status == 429)
    return Result(FAILED, detail)
