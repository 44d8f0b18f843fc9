"""The MQTT clients hallwatch makes, and the one module that touches aiomqtt's insides.

aiomqtt 2.x acknowledges QoS 1 messages on receipt, which would lose any message still in memory
when the process dies, and has no switch for it; the paho-mqtt 2 client underneath has one. So the
ingest's client is switched to paho's `manual_ack`, and `AckingClient.ack` sends each PUBACK once
the batch holding the message is committed. That paho client is aiomqtt's private `_client`:
`paho()` below is the only place it is read (tests/daemon/mqtt/test_client_contract.py fails,
naming the attribute, if aiomqtt renames it). The messages that have already arrived are taken
from the client's queue without a wait each; that queue is ours through aiomqtt's public
`queue_type` option, not its private `_queue`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiomqtt
import paho.mqtt.client as mqtt
from hallwatch.daemon.config.sections import Broker
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.mqtt.props import share_tables
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger("hallwatch.mqtt")

#: The private attribute of `aiomqtt.Client` that holds its paho-mqtt client (aiomqtt 2.x).
PAHO_ATTRIBUTE = "_client"


def paho(client: aiomqtt.Client) -> mqtt.Client:
    """The paho-mqtt client under an aiomqtt client."""
    inner: mqtt.Client = getattr(client, PAHO_ATTRIBUTE)  # PRIVATE aiomqtt (see module docstring)
    return inner


@dataclass(frozen=True, slots=True)
class AckingClient:
    """An aiomqtt client whose QoS 1 messages are acknowledged by `ack`, not on receipt;
    `ready` is its own incoming-message queue (given through `queue_type`); `broker` the
    broker of the list (`mqtt.url`, `more_urls`) this client connects to."""

    client: aiomqtt.Client
    ready: asyncio.Queue[aiomqtt.Message]
    broker: Broker

    def take_ready(self, batch: list[aiomqtt.Message], batch_max: int) -> None:
        """Add what has already arrived to `batch`, up to `batch_max`, without waiting."""
        while len(batch) < batch_max:
            try:
                batch.append(self.ready.get_nowait())
            except asyncio.QueueEmpty:
                return

    def ack(self, message: aiomqtt.Message) -> None:
        """Send the PUBACK of a stored message (nothing for QoS 0)."""
        if message.qos > 0:
            paho(self.client).ack(message.mid, message.qos)


def _remembered(
    made: list[asyncio.Queue[aiomqtt.Message]],
) -> type[asyncio.Queue[aiomqtt.Message]]:
    """A queue class for aiomqtt's `queue_type` that hands each queue it makes to `made`."""

    class Ready(asyncio.Queue[aiomqtt.Message]):
        def __init__(self, maxsize: int = 0) -> None:
            super().__init__(maxsize)
            made.append(self)

    return Ready


def tls_params(settings: Settings) -> aiomqtt.TLSParameters | None:
    """TLS for mqtts:// brokers: verify the server, optionally present a client certificate."""
    mq = settings.mqtt
    if not mq.broker().tls:
        return None
    return aiomqtt.TLSParameters(ca_certs=mq.ca_file, certfile=mq.cert_file, keyfile=mq.key_file)


# How many clients each identifier has made: with `mqtt.more_urls`, each (re)connect of a client
# goes to the next broker of the list (a cluster's nodes all hold the session).
_turns: dict[str, int] = {}


def next_broker(settings: Settings, identifier: str) -> Broker:
    """The broker this connect of `identifier` tries: `mqtt.url`, then in turn `more_urls`."""
    brokers = settings.mqtt.brokers()
    turn = _turns.get(identifier, 0)
    _turns[identifier] = turn + 1
    broker = brokers[turn % len(brokers)]
    if len(brokers) > 1:
        log.info(
            "mqtt: %s connects to %s (%d of %d)",
            identifier,
            broker.url(),
            turn % len(brokers) + 1,
            len(brokers),
        )
    return broker


def make_output_client(settings: Settings) -> aiomqtt.Client:
    """A plain client for the daemon's outputs (estimates, status): no session to keep."""
    broker = next_broker(settings, f"{settings.mqtt.client_id}-out")
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        identifier=f"{settings.mqtt.client_id}-out",
        keepalive=settings.mqtt.keepalive_s,
        timeout=5,
        tls_params=tls_params(settings),
    )


def make_client(settings: Settings, *, identifier: str | None = None) -> AckingClient:
    """A persistent-session, manual-ack MQTT 5 client for the settings' broker."""
    share_tables()  # see props.py: 14 % of ingest's CPU
    mq = settings.mqtt
    broker = next_broker(settings, identifier or mq.client_id)
    session: dict[str, Any]
    if mq.protocol == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = mq.session_expiry_s
        props.ReceiveMaximum = mq.receive_maximum
        session = {
            "protocol": aiomqtt.ProtocolVersion.V5,
            "clean_start": False,
            "properties": props,
        }
    else:
        # MQTT 3.1.1 (e.g. the demo's embedded amqtt): a persistent session, but the broker
        # sets the in-flight window itself.
        session = {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": False}
    made: list[asyncio.Queue[aiomqtt.Message]] = []
    client = aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password,
        identifier=identifier or mq.client_id,
        keepalive=mq.keepalive_s,
        # Also bounds a connect that a dying broker accepted but never answers (no CONNACK).
        timeout=5,
        tls_params=tls_params(settings),
        queue_type=_remembered(made),
        **session,
    )
    (ready,) = made
    # aiomqtt has no switch for this; the paho client underneath does (see module docstring).
    paho(client).manual_ack_set(True)
    return AckingClient(client, ready, broker)
