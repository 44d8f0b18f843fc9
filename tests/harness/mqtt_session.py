"""Plain paho-mqtt (3.1.1) clients to check a broker cluster's persistent sessions: a QoS 1
subscriber with clean_session=False that goes offline, a publisher that waits for every PUBACK,
and a drain that reads back what the session kept (numbers, in arrival order)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def _client(client_id: str, clean: bool) -> mqtt.Client:
    return mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean,
        protocol=mqtt.MQTTv311,
    )


def _connect(c: mqtt.Client, port: int, timeout: float) -> None:
    up = threading.Event()
    c.on_connect = lambda *a: up.set()
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    if not up.wait(timeout):
        c.loop_stop()
        raise TimeoutError(f"no CONNACK from 127.0.0.1:{port}")


def subscribe_offline(port: int, client_id: str, topic: str, timeout: float = 30.0) -> None:
    """Make a persistent session subscribed to `topic` at QoS 1, then disconnect (offline)."""
    c = _client(client_id, clean=False)
    _connect(c, port, timeout)
    acked = threading.Event()
    c.on_subscribe = lambda *a: acked.set()
    c.subscribe(topic, qos=1)
    if not acked.wait(timeout):
        raise TimeoutError("no SUBACK")
    c.disconnect()
    c.loop_stop()


def _acked(info: mqtt.MQTTMessageInfo) -> bool:
    """PUBACK received (a message published while disconnected keeps rc NO_CONN, though queued)."""
    return bool(info._published)


@dataclass
class Published:
    acked: int
    reconnects: int  # the broker dropped the publisher this often (it resent what was unacked)


def publish_numbers(
    port: int, topic: str, first: int, last: int, timeout: float = 120.0
) -> Published:
    """Publish str(i) for i in [first, last) at QoS 1 as a gateway does (persistent session,
    paho reconnects and resends what was not PUBACKed); wait for every PUBACK."""
    c = _client(f"pub-{time.time_ns()}", clean=False)
    c.max_inflight_messages_set(100)
    c.max_queued_messages_set(0)
    c.reconnect_delay_set(0.1, 1)  # type: ignore[arg-type]  # paho takes seconds as float
    _connect(c, port, timeout)
    connects = [0]
    c.on_connect = lambda *a: connects.__setitem__(0, connects[0] + 1)
    infos = [c.publish(topic, str(i).encode(), qos=1) for i in range(first, last)]
    deadline = time.monotonic() + timeout
    while not all(_acked(i) for i in infos) and time.monotonic() < deadline:
        time.sleep(0.1)
    c.disconnect()
    c.loop_stop()
    return Published(sum(map(_acked, infos)), connects[0])


@dataclass
class Drained:
    got: list[int] = field(default_factory=list)

    @property
    def distinct(self) -> int:
        return len(set(self.got))

    @property
    def duplicates(self) -> int:
        return len(self.got) - self.distinct

    @property
    def out_of_order(self) -> int:
        """Arrivals smaller than one already seen (first arrivals only)."""
        seen: set[int] = set()
        top, late = -1, 0
        for n in self.got:
            if n in seen:
                continue
            seen.add(n)
            late += n < top
            top = max(top, n)
        return late

    def summary(self, want: int) -> str:
        return (
            f"{self.distinct}/{want} distinct received, {self.duplicates} duplicates,"
            f" {self.out_of_order} out of order"
        )


def drain(
    port: int, client_id: str, want: int, quiet: float = 5.0, timeout: float = 60.0
) -> Drained:
    """Resume the session `client_id` (clean_session=False) and read until `want` distinct
    numbers came and then `quiet` s passed without a message (or `timeout`)."""
    out = Drained()
    last = [time.monotonic()]
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            out.got.append(int(msg.payload))
            last[0] = time.monotonic()

    c = _client(client_id, clean=False)
    c.on_message = on_message
    start = time.monotonic()
    _connect(c, port, timeout)
    deadline = start + timeout
    while time.monotonic() < deadline:
        with lock:
            enough = len(set(out.got)) >= want
            idle = time.monotonic() - last[0]
        if idle > quiet and (enough or time.monotonic() - start > 2 * quiet):
            break
        time.sleep(0.1)
    c.disconnect()
    c.loop_stop()
    return out
