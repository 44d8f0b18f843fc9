"""The output publisher: status de-duplication, bounded queue, and stopping when cancelled."""

from __future__ import annotations

import asyncio
import json
from types import TracebackType
from typing import ClassVar

import aiomqtt
from hallwatch.daemon.config.settings import load
from hallwatch.daemon.mqtt.outputs import WINDOW, OutputPublisher, status_payload
from prometheus_client import CollectorRegistry


def _status(headcount: int, at: float) -> dict[str, object]:
    return status_payload(
        "h1",
        at,
        headcount=headcount,
        waiting={"提取": 3},
        estimated_wait_s={"提取": 600.4},
        windows_open=2,
        alerts=[],
        systems_down=[],
    )


def test_status_is_sent_on_change_and_every_30_s_only() -> None:
    """An unchanged status is not re-sent within 30 s; a change or 30 s later is."""
    pub = OutputPublisher(load(), CollectorRegistry(), maxsize=10)
    pub.status("h1", _status(5, 100.0), 100.0)
    pub.status("h1", _status(5, 110.0), 110.0)
    pub.status("h1", _status(6, 111.0), 111.0)
    pub.status("h1", _status(6, 142.0), 142.0)
    sent = [pub._queue.get_nowait() for _ in range(pub._queue.qsize())]
    assert [json.loads(body)["headcount"] for _, body, _ in sent] == [5, 6, 6]
    assert all(topic == "hall/h1/status" and retain for topic, _, retain in sent)


def test_full_queue_drops_the_oldest_and_counts_it() -> None:
    """With the broker away, the queue keeps the newest outputs and counts what it dropped."""
    registry = CollectorRegistry()
    pub = OutputPublisher(load(), registry, maxsize=3)
    for i in range(5):
        pub.put("hall/h1/estimate", {"ticket": f"A{i}"})
    kept = [json.loads(pub._queue.get_nowait()[1])["ticket"] for _ in range(3)]
    assert kept == ["A2", "A3", "A4"]
    assert registry.get_sample_value("hallwatch_outputs_dropped_total") == 2


class _DisconnectFails:
    """Speaks aiomqtt's client interface: publishing hangs, and leaving raises MqttError, as
    aiomqtt does when its disconnect times out."""

    async def __aenter__(self) -> _DisconnectFails:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise aiomqtt.MqttError("Operation timed out")

    async def publish(self, *args: object, **kwargs: object) -> None:
        await asyncio.Event().wait()


async def test_cancel_stops_even_when_the_client_turns_it_into_an_mqtt_error() -> None:
    """Cancelling `run` ends it, though the client's exit raises MqttError (no reconnect)."""
    pub = OutputPublisher(load(), CollectorRegistry())
    pub.put("hall/h1/estimate", {"ticket": "A1"})
    task = asyncio.create_task(pub.run(_DisconnectFails))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2.0)
    try:
        assert task in done, "run() swallowed its cancellation and went on reconnecting"
        assert task.cancelled()
    finally:
        if not task.done():  # a second cancel lands in the queue wait and ends it
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)


class _AckRacesCancel(_DisconnectFails):
    """Publishing completes even when cancelled (as 3.11's wait_for does when the PUBACK and the
    cancellation arrive together); leaving is clean."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def publish(self, *args: object, **kwargs: object) -> None:
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            return  # the swallowed cancellation


async def test_cancel_that_races_a_puback_still_stops_the_publisher() -> None:
    """A cancellation lost inside the client's publish is still honoured by `run`."""
    pub = OutputPublisher(load(), CollectorRegistry())
    pub.put("hall/h1/estimate", {"ticket": "A1"})
    task = asyncio.create_task(pub.run(_AckRacesCancel))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2.0)
    try:
        assert task in done, "run() lost its cancellation and waits for the next output"
    finally:
        if not task.done():  # a second cancel lands in the queue wait and ends it
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)


class _SlowBroker:
    """Speaks aiomqtt's client interface: a PUBACK comes 20 ms after each publish; the n-th
    publish of the first connection fails (the connection drops)."""

    calls: ClassVar[list[tuple[int, str]]] = []
    flying = 0
    most = 0
    connections = 0
    fail_at = 5

    async def __aenter__(self) -> _SlowBroker:
        type(self).connections += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def publish(self, topic: str, body: bytes, **kwargs: object) -> None:
        cls = type(self)
        ticket = json.loads(body)["ticket"]
        cls.calls.append((cls.connections, ticket))
        if cls.connections == 1 and len(cls.calls) == cls.fail_at:
            raise aiomqtt.MqttError("connection lost")
        cls.flying += 1
        cls.most = max(cls.most, cls.flying)
        try:
            await asyncio.sleep(0.02)
        finally:
            cls.flying -= 1


async def test_outputs_are_pipelined_in_order_and_a_failed_one_is_sent_again() -> None:
    """Forty outputs are published in the order queued with many awaiting their PUBACK at once
    (one at a time they were ~100 a second on a busy loop: estimates queued for half a second);
    the one whose publish failed with the connection, and those then awaiting their PUBACK, are
    sent again, in order, on the next one."""
    registry = CollectorRegistry()
    pub = OutputPublisher(load(), registry)
    for i in range(40):
        pub.put("hall/h1/estimate", {"ticket": f"A{i:02d}"})
    task = asyncio.create_task(pub.run(_SlowBroker))  # type: ignore[arg-type]
    try:
        for _ in range(200):
            if (
                registry.get_sample_value("hallwatch_outputs_published_total", {"kind": "estimate"})
                == 40
            ):
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=2.0)
    first = [t for c, t in _SlowBroker.calls if c == 1]
    again = [t for c, t in _SlowBroker.calls if c == 2]
    assert _SlowBroker.most > 1 and _SlowBroker.connections == 2
    assert first[:5] == ["A00", "A01", "A02", "A03", "A04"]  # in order
    # A04 failed with the connection; it and what awaited its PUBACK then go again, in order.
    assert "A04" in again and again == sorted(again)
    assert set(first) | set(again) == {f"A{i:02d}" for i in range(40)}
    assert (
        registry.get_sample_value("hallwatch_outputs_published_total", {"kind": "estimate"}) == 40
    )


class _SilentBroker:
    """Speaks aiomqtt's client interface: takes every publish and never answers it."""

    async def __aenter__(self) -> _SilentBroker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def publish(self, topic: str, body: bytes, **kwargs: object) -> None:
        await asyncio.Event().wait()


async def test_pending_only_while_the_publisher_can_send() -> None:
    """`pending` (what the tick and the estimator lane give way to) is false while no
    connection is up, true once one is and an output is queued, and false again once the
    broker stops answering and the window of outputs in flight is full: a broker that is away
    or stuck must not hold the tick and the lane back."""
    pub = OutputPublisher(load(), CollectorRegistry())
    pub.put("hall/h1/estimate", {"ticket": "A00"})
    assert not pub.pending()  # queued, but nothing to send it on
    task = asyncio.create_task(pub.run(_SilentBroker))  # type: ignore[arg-type]
    try:
        for _ in range(5):
            await asyncio.sleep(0)
        assert pub._queue.empty() and not pub.pending()  # taken at once
        pub.put("hall/h1/estimate", {"ticket": "A01"})
        assert pub.pending()  # connected, room in the window: the publisher's turn is next
        for i in range(2, 100):
            pub.put("hall/h1/estimate", {"ticket": f"A{i:02d}"})
        for _ in range(5):
            await asyncio.sleep(0)
        # The window is full, one more taken waits for room, the rest wait in the queue.
        assert pub._queue.qsize() == 100 - WINDOW - 1
        assert not pub.pending()
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=2.0)
    assert not pub.pending()
