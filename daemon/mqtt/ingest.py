"""MQTT ingest: receive, validate, store, then acknowledge.

Two traps of aiomqtt 2.x are handled here:
- it acknowledges QoS 1 messages on receipt, which would lose any message still in memory when
  the process dies. The client (`mqtt.client.make_client`) is switched to paho-mqtt's
  `manual_ack`, and each PUBACK is sent only after the batch holding the message is committed.
- its default `clean_start` starts a fresh session on re-entry. We connect with MQTT 5,
  `clean_start=False` and a session expiry, so the broker keeps our subscriptions and queues
  messages while the daemon is down, and redelivers whatever we had not acknowledged.

Batching is natural: while one batch commits (in aiosqlite's thread), the event loop keeps
reading the socket; the next batch is whatever arrived meanwhile, up to `store.batch_max`.
The broker's in-flight window is our CONNECT Receive Maximum (`mqtt.receive_maximum`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable

import aiomqtt
from hallwatch.daemon.base import backoff
from hallwatch.daemon.base.ratelog import RateLimitedLog
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.metrics.families import IngestMetrics
from hallwatch.daemon.mqtt.client import AckingClient, make_client
from hallwatch.daemon.store.events import NewEvent, NewReject, Store
from hallwatch.sensors.events import Event, Reason, Rejection
from hallwatch.sensors.parse import parse

log = logging.getLogger("hallwatch.ingest")

INPUT_FILTERS = ("+/ticket", "+/window/+", "+/door/+", "+/device/+", "+/system/+", "+/complaint")


def subscriptions(root: str, halls: Iterable[str] = ()) -> list[tuple[str, int]]:
    """The input topics of the contract, at QoS 1; never the daemon's own outputs. With
    `halls` (a shard's, `mqtt.halls`) those halls' topics only, else every hall's."""
    owned = sorted(set(halls))
    if not owned:
        return [(f"{root}/{f}", 1) for f in INPUT_FILTERS]
    return [(f"{root}/{h}/{f.removeprefix('+/')}", 1) for h in owned for f in INPUT_FILTERS]


def raise_if_cancelling() -> None:
    """Raise CancelledError if the current task was asked to stop but did not see it (3.11's
    asyncio.wait_for, used inside aiomqtt, can swallow a cancellation that races a result)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def reraise_if_cancelled(err: BaseException) -> None:
    """aiomqtt's `__aexit__` can turn a cancellation into an MqttError (its disconnect fails);
    a task being cancelled must still stop, not reconnect."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from err


class Ingest:
    """Owns the broker connection and the store-then-ack pipeline."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        process: Callable[[Event], object],
        metrics: IngestMetrics,
        *,
        clock: Callable[[], float] = time.time,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._process = process  # the pipeline: state, then estimator (daemon/pipeline/process.py)
        self._metrics = metrics
        self._clock = clock
        self._on_batch = on_batch
        self._root = settings.mqtt.topic_root
        self._halls = settings.mqtt.halls  # a shard's halls; empty: every hall
        self._max_future = settings.hall.max_future_s
        self._rejects_log = RateLimitedLog(log)
        self.connected = False
        self.last_seq = 0
        self.last_commit_at: float | None = None
        self._conn: AckingClient | None = None
        self._handling = False  # a batch is being stored, acknowledged and applied

    async def run(self) -> None:
        """Connect, consume, reconnect with backoff; returns only by cancellation."""
        attempt = 0
        rand = random.Random()
        mq = self._settings.mqtt
        while True:
            conn = make_client(self._settings)
            try:
                async with conn.client:
                    attempt = 0
                    self._set_connected(True)
                    log.info("connected to %s", conn.broker.url())
                    await conn.client.subscribe(subscriptions(self._root, self._halls))
                    await self._consume(conn)
            except aiomqtt.MqttError as err:
                reraise_if_cancelled(err)
                wait = backoff.delay(
                    attempt, base=mq.reconnect_min_s, cap=mq.reconnect_max_s, rand=rand
                )
                if self.connected:
                    self._metrics.reconnects.inc()
                log.warning("broker %s: %s; retrying in %.1f s", conn.broker.url(), err, wait)
                self._set_connected(False)
                attempt += 1
                await asyncio.sleep(wait)
            finally:
                self._set_connected(False)
                self._conn = None  # what it had queued is redelivered on the next connection

    def waiting(self) -> bool:
        """Messages have arrived and ingest is about to take them: the estimator lane gives
        way (pipeline/turns.py). Not while a batch commits in the store's thread: the lane's
        estimates go on then, and what arrives meanwhile is the next batch."""
        conn = self._conn
        return not self._handling and conn is not None and conn.ready.qsize() > 0

    def busy(self) -> bool:
        """A batch in hand, or messages waiting to be taken: the tick gives way. Also while a
        batch commits: a tick's slice then would hold the GIL the store's thread needs back
        after each statement (up to the 5 ms switch interval each time)."""
        return self._handling or self.waiting()

    def _set_connected(self, up: bool) -> None:
        self.connected = up
        self._metrics.connected.set(1 if up else 0)

    async def _consume(self, conn: AckingClient) -> None:
        batch_max = self._settings.store.batch_max
        self._conn = conn
        messages = conn.client.messages
        it = aiter(messages)
        while True:
            batch = [await anext(it)]
            # The rest of the batch is what has already arrived: taken straight from the
            # client's queue, because aiomqtt's iterator spends a task and a wait on each message.
            conn.take_ready(batch, batch_max)
            self._handling = True
            # Shielded: a shutdown waits for the batch to be stored and acknowledged.
            work = asyncio.ensure_future(self._handle(conn, batch))
            try:
                await asyncio.shield(work)
            except asyncio.CancelledError:
                await work
                raise
            raise_if_cancelling()

    async def _handle(self, conn: AckingClient, batch: list[aiomqtt.Message]) -> None:
        try:
            await self.take(
                [
                    (
                        m.topic.value,
                        m.payload if isinstance(m.payload, bytes) else bytes(m.payload or b""),
                    )
                    for m in batch
                ]
            )
            # Stored: now the broker may forget them.
            for msg in batch:
                conn.ack(msg)
        finally:
            self._handling = False

    async def take(self, messages: list[tuple[str, bytes]]) -> None:
        """Parse, store (one transaction), then process each new event: store, then act.
        Returns once the batch is durable, so the caller may acknowledge it."""
        received = self._clock()
        events = []
        stored: list[NewEvent] = []
        rejects: list[NewReject] = []
        for topic, payload in messages:
            result = parse(topic, payload, self._root)
            if not isinstance(result, Rejection) and result.ts > received + self._max_future:
                # One device with its clock years ahead would move its hall to that day and
                # make every real event "stale": refuse it, visibly, instead.
                result = Rejection(
                    Reason.BAD_TS,
                    f"ts is {result.ts - received:.0f} s ahead of the daemon's clock",
                    topic[:256],
                    result.hall,
                )
            if isinstance(result, Rejection):
                rejects.append(
                    NewReject(received, topic[:256], result.reason.value, result.detail, payload)
                )
                self._metrics.rejected.labels(result.reason.value).inc()
                self._rejects_log.warn(
                    result.reason.value,
                    received,
                    "rejected %s on %r: %r",
                    result.reason.value,
                    topic[:128],
                    result.detail[:200],
                    extra={
                        "topic": topic[:128],
                        "reason": result.reason.value,
                        "hall": result.hall,
                    },
                )
            else:
                events.append(result)
                stored.append(NewEvent(result.hall, result.id, topic, result.ts, received, payload))
        started = time.perf_counter()
        fresh, self.last_seq = await self._store.commit_batch(stored, rejects)
        self._metrics.commit.observe(time.perf_counter() - started)
        self._metrics.batch.observe(len(messages))
        self.last_commit_at = received
        duplicates = 0
        for event, is_new in zip(events, fresh, strict=True):
            if not is_new:
                duplicates += 1
                continue
            lag = received - event.ts
            if lag < -5:
                self._metrics.clock_ahead.inc()
            self._metrics.lag.observe(max(0.0, lag))
            self._process(event)
        self._metrics.events.labels("accepted").inc(len(events) - duplicates)
        self._metrics.events.labels("duplicate").inc(duplicates)
        self._metrics.events.labels("rejected").inc(len(rejects))
        if self._on_batch is not None:
            self._on_batch(len(events) - duplicates)
