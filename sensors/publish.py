"""A plain paho-mqtt publisher, as a device or gateway would be: QoS 1, waits for every PUBACK."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def publish_all(
    host: str,
    port: int,
    messages: Iterable[tuple[str, bytes]],
    *,
    client_id: str = "",
    max_inflight: int = 1000,
    timeout: float = 120.0,
) -> int:
    """Publish every (topic, payload) at QoS 1; return once the broker acknowledged them all."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(0)
    done = threading.Event()
    state = {"pending": 0, "finished": False}
    lock = threading.Lock()

    def on_publish(c: mqtt.Client, u: object, mid: int, rc: object, props: object) -> None:
        with lock:
            state["pending"] -= 1
            if state["finished"] and state["pending"] == 0:
                done.set()

    client.on_publish = on_publish
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        count = 0
        for topic, payload in messages:
            with lock:
                state["pending"] += 1
            client.publish(topic, payload, qos=1)
            count += 1
        with lock:
            state["finished"] = True
            if state["pending"] == 0:
                done.set()
        if not done.wait(timeout):
            raise TimeoutError(f"{state['pending']} of {count} publishes not acknowledged")
        return count
    finally:
        client.disconnect()
        client.loop_stop()
