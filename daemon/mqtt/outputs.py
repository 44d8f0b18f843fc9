"""What the daemon publishes back (contract "Outputs"): estimates and the retained hall status.

Outputs are derived data: they can always be recomputed from the event store, so they go
through a bounded in-memory queue on a connection of their own, and the ingest path never waits
on them. When the broker is away the oldest queued outputs are dropped (and counted).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
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


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


STATUS_EVERY_S = 30.0
WINDOW = 64  # outputs published and awaiting their PUBACK at once
Output = tuple[str, bytes, bool]  # topic, payload, retain


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
        # (order taken, output) that failed on a connection, sent first on the next, in order
        self._retry: list[tuple[int, Output]] = []
        self._taken = itertools.count()
        self._window: asyncio.Semaphore | None = None  # while connected: outputs in flight

    def put(self, topic: str, payload: dict[str, Any], *, retain: bool = False) -> None:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped.inc()
        self._queue.put_nowait((topic, body, retain))

    def pending(self) -> bool:
        """Outputs are queued and the publisher can send them now (connected, its window not
        full): the tick and the estimator lane give way to them (pipeline/turns.py). Not while
        the broker is away or slow to answer: the queue waits for it then, and they would too."""
        w = self._window
        return w is not None and not w.locked() and not self._queue.empty()

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
        while True:
            try:
                async with make_client() as client:
                    attempt = 0
                    await self._publish(client)
            except aiomqtt.MqttError as err:
                reraise_if_cancelled(err)
                wait = backoff.delay(
                    attempt, base=mq.reconnect_min_s, cap=mq.reconnect_max_s, rand=rand
                )
                log.warning("output connection: %s; retrying in %.1f s", err, wait)
                attempt += 1
                await asyncio.sleep(wait)

    async def _publish(self, client: aiomqtt.Client) -> None:
        """Publish queued outputs with up to WINDOW of them awaiting their PUBACK at once, in
        the order queued (paho writes each at the call; only the wait runs concurrently). One at
        a time, each output waited for a turn of the event loop and the broker's answer: ~100
        a second while ingest and the estimator kept the loop busy, less than the status and
        estimates of 100 busy halls, and estimates queued for half a second (#14). A publish
        that fails, and those still awaiting their PUBACK then, are sent again first on the next
        connection (QoS 1: at least once); the failure reconnects."""
        window = self._window = asyncio.Semaphore(WINDOW)
        flying: dict[asyncio.Task[None], None] = {}  # in the order published
        failed: list[aiomqtt.MqttError] = []
        broken = asyncio.Event()

        async def one(item: tuple[int, Output]) -> None:
            topic, body, retain = item[1]
            try:
                await client.publish(topic, body, qos=1, retain=retain)
                self.published.labels("status" if retain else "estimate").inc()
            except aiomqtt.MqttError as err:
                bisect.insort(self._retry, item)
                failed.append(err)
                broken.set()
            except asyncio.CancelledError:
                bisect.insort(self._retry, item)  # no PUBACK came: again on the next connection
                raise
            finally:
                window.release()

        try:
            while (item := await self._next(broken)) is not None:
                await window.acquire()
                task = asyncio.create_task(one(item))
                flying[task] = None
                task.add_done_callback(lambda t: flying.pop(t, None))
                # Python 3.11's asyncio.wait_for (inside aiomqtt's publish) drops a
                # cancellation that lands as the PUBACK arrives: honour it here.
                raise_if_cancelling()
            raise failed[0]
        finally:
            self._window = None
            waiting = list(flying)
            for task in waiting:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)

    async def _next(self, broken: asyncio.Event) -> tuple[int, Output] | None:
        """The next output to publish (one that failed first), or None once `broken`."""
        if broken.is_set():
            return None
        if self._retry:
            return self._retry.pop(0)
        if not self._queue.empty():
            # At once: the wait below costs two futures and three turns of the event loop an
            # output, and an estimate queued behind a tick's statuses waited 40-60 ms (#14).
            return next(self._taken), self._queue.get_nowait()
        getter = asyncio.ensure_future(self._queue.get())
        stop = asyncio.ensure_future(broken.wait())
        try:
            await asyncio.wait({getter, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not getter.done():
                getter.cancel()
            elif not getter.cancelled() and (broken.is_set() or _cancelling()):
                # Taken as the connection broke or the task is cancelled: first next time.
                bisect.insort(self._retry, (next(self._taken), getter.result()))
                getter = None  # type: ignore[assignment]
        if getter is None or getter.cancelled() or broken.is_set():
            return None
        return next(self._taken), getter.result()
