"""What hallwatch relies on inside aiomqtt (daemon/mqtt/client.py): if an aiomqtt release renames
or changes it, these fail and say what to update, instead of the ingest acking on receipt."""

from __future__ import annotations

import aiomqtt
import paho.mqtt.client as mqtt
from hallwatch.daemon.config.settings import load
from hallwatch.daemon.mqtt import client as mqtt_client


async def test_aiomqtt_client_still_holds_its_paho_client_where_we_read_it() -> None:
    """aiomqtt.Client's private `_client` is still a paho client with manual_ack_set and ack."""
    client = aiomqtt.Client("127.0.0.1", 1883)
    name = mqtt_client.PAHO_ATTRIBUTE
    inner = getattr(client, name, None)
    assert isinstance(inner, mqtt.Client), (
        f"aiomqtt {aiomqtt.__version__}: aiomqtt.Client.{name} is no longer the paho-mqtt "
        f"client ({type(inner).__name__}); update hallwatch.daemon.mqtt.client.paho, or manual "
        "acknowledgement (PUBACK after the commit) is lost"
    )
    for method in ("manual_ack_set", "ack"):
        assert callable(getattr(inner, method, None)), f"paho-mqtt Client.{method} is gone"


async def test_the_ingest_client_acks_by_hand_from_its_own_queue() -> None:
    """make_client switches paho to manual ack, and its `ready` queue is what aiomqtt's messages
    iterator reads (the public queue_type option still makes the client's queue)."""
    conn = mqtt_client.make_client(load())
    assert mqtt_client.paho(conn.client) is getattr(conn.client, mqtt_client.PAHO_ATTRIBUTE)
    manual = getattr(mqtt_client.paho(conn.client), "_manual_ack", None)
    assert manual is True, "paho-mqtt: manual_ack_set(True) is not in force (or was renamed)"
    message = aiomqtt.Message("hall/h1/ticket", b"{}", qos=1, retain=False, mid=7, properties=None)
    conn.ready.put_nowait(message)
    assert len(conn.client.messages) == 1, (
        f"aiomqtt {aiomqtt.__version__}: Client(queue_type=...) no longer makes the queue the "
        "messages iterator reads; update hallwatch.daemon.mqtt.client.make_client"
    )
    batch: list[aiomqtt.Message] = []
    conn.take_ready(batch, 10)
    assert batch == [message] and len(conn.client.messages) == 0
