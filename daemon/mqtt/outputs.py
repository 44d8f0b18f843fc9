"""What the daemon publishes back (contract "Outputs"): estimates and the retained hall status.

Outputs are derived data: they can always be recomputed from the event store, so they go
through a bounded in-memory queue on a connection of their own, and the ingest path never waits
on them. When the broker is away the oldest queued outputs are dropped (and counted).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from typing import Any

import aiomqtt
from hallwatch.daemon.base import backoff
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.estimate.model import EstimateOut
from hallwatch.daemon.mqtt.ingest import raise_if_cancelling, reraise_if_cancelled
from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger("hallwatch.outputs")

STATUS_EVERY_S = 30.0


def _seconds(x: float | None) -> int | None:
    return None if x is None else round(x)


def estimate_payload(out: EstimateOut) -> dict[str, Any]:
    """The `{root}/{hall}/estimate` message of one estimate (contract "Outputs")."""
    return {
        "ticket": out.ticket,
        "service": out.service,
        "priority": out.priority,
        "position": out.position,
        "estimated_wait_s": _seconds(out.estimated_wait_s),
        "p10_s": _seconds(out.p10_s),
        "p90_s": _seconds(out.p90_s),
        "revision": out.revision,
        "at": out.at,
    }


def status_payload(
    hall: str,
    now: float,
    *,
    headcount: int,
    waiting: dict[str, int],
    estimated_wait_s: dict[str, float | None],
    windows_open: int,
    alerts: list[dict[str, Any]],
    systems_down: list[str],
) -> dict[str, Any]:
    """The contract's `{root}/{hall}/status` body."""
    return {
        "hall": hall,
        "at": round(now, 3),
        "headcount": headcount,
        "waiting": dict(sorted(waiting.items())),
        "estimated_wait_s": {
            s: None if v is None else round(v) for s, v in sorted(estimated_wait_s.items())
        },
        "windows_open": windows_open,
        "alerts": alerts,
        "systems_down": sorted(systems_down),
    }


class OutputPublisher:
    """Publishes queued (topic, payload, retain) outputs at QoS 1 on its own connection."""

    def __init__(self, settings: Settings, registry: CollectorRegistry, maxsize: int = 10000):
        self._settings = settings
        self._queue: asyncio.Queue[tuple[str, bytes, bool]] = asyncio.Queue(maxsize)
        self.published = Counter(
            "hallwatch_outputs_published",
            "Outputs published (estimates, status).",
            ["kind"],
            registry=registry,
        )
        for kind in ("estimate", "status"):
            self.published.labels(kind)
        self.dropped = Counter(
            "hallwatch_outputs_dropped",
            "Outputs dropped because the broker was away and the queue was full.",
            registry=registry,
        )
        self._last_status: dict[str, tuple[str, float]] = {}

    def put(self, topic: str, payload: dict[str, Any], *, retain: bool = False) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped.inc()
        self._queue.put_nowait((topic, body, retain))

    def status(
        self, hall: str, payload: dict[str, Any], now: float, *, keep_alive: bool = False
    ) -> None:
        """Queue a retained status when it changed, when the last one is 30 s old, or when the
        caller says the keep-alive is now (the tick's sweep of the hall, spread over 30 s)."""
        key = json.dumps({k: v for k, v in payload.items() if k != "at"}, sort_keys=True)
        last = self._last_status.get(hall)
        if (
            not keep_alive
            and last is not None
            and last[0] == key
            and now - last[1] < STATUS_EVERY_S
        ):
            return
        self._last_status[hall] = (key, now)
        root = self._settings.mqtt.topic_root
        self.put(f"{root}/{hall}/status", payload, retain=True)

    def status_due(self, hall: str, now: float) -> bool:
        """Whether the hall's retained status is due for the keep-alive (or was never sent)."""
        last = self._last_status.get(hall)
        return last is None or now - last[1] >= STATUS_EVERY_S

    async def run(self, make_client: Callable[[], aiomqtt.Client]) -> None:
        mq = self._settings.mqtt
        attempt = 0
        rand = random.Random()
        pending: tuple[str, bytes, bool] | None = None
        while True:
            try:
                async with make_client() as client:
                    attempt = 0
                    while True:
                        if pending is None:
                            pending = await self._queue.get()
                        topic, body, retain = pending
                        await client.publish(topic, body, qos=1, retain=retain)
                        self.published.labels("status" if retain else "estimate").inc()
                        pending = None
                        # Python 3.11's asyncio.wait_for (inside aiomqtt's publish) drops a
                        # cancellation that lands as the PUBACK arrives: honour it here.
                        raise_if_cancelling()
            except aiomqtt.MqttError as err:
                reraise_if_cancelled(err)
                wait = backoff.delay(
                    attempt, base=mq.reconnect_min_s, cap=mq.reconnect_max_s, rand=rand
                )
                log.warning("output connection: %s; retrying in %.1f s", err, wait)
                attempt += 1
                await asyncio.sleep(wait)
