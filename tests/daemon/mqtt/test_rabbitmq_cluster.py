"""A clustered broker: a three-node RabbitMQ cluster (Debian's 3.10, its MQTT plugin) of the
test's own (tests/harness/rabbitmq.py), persistent MQTT sessions as quorum queues.

The check that NATS 2.9.10 fails (an offline QoS 1 session loses what is published while a node
is stopped), here with plain paho clients; then the daemon itself, `mqtt.more_urls` naming the
other nodes, its node stopped mid-peak: every event stored once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess
from tests.harness.cluster_peak import EXPECTED_STORED, node_stops_mid_peak
from tests.harness.mqtt_session import drain, publish_numbers, subscribe_offline
from tests.harness.rabbitmq import RabbitCluster, find_rabbitmq

pytestmark = pytest.mark.skipif(find_rabbitmq() is None, reason="rabbitmq-server is not installed")

LOSS_N = 5000


async def test_offline_session_keeps_every_message_across_a_node_kill(tmp_path: Path) -> None:
    """A persistent QoS 1 subscriber on r1 goes offline; r1 (its queue's leader) is killed;
    5,000 QoS 1 messages are published on r2; r1 restarts; the subscriber resumes on r3 and
    gets all 5,000 (once each, in publish order, unless the publisher had to resend)."""
    cluster = RabbitCluster(tmp_path / "rabbit")
    await asyncio.to_thread(cluster.start)
    try:
        r1, r2, r3 = cluster.nodes
        await asyncio.to_thread(subscribe_offline, r1.mqtt_port, "loss-sub", "loss/#")
        await asyncio.to_thread(r1.stop, True)
        pub = await asyncio.to_thread(publish_numbers, r2.mqtt_port, "loss/x", 0, LOSS_N)
        await asyncio.to_thread(cluster.restart, r1)
        got = await asyncio.to_thread(drain, r3.mqtt_port, "loss-sub", LOSS_N)
    finally:
        await asyncio.to_thread(cluster.stop)
    print(
        f"\nrabbitmq quorum session across a node kill: {pub.acked} acked"
        f" ({pub.reconnects} publisher reconnects); {got.summary(LOSS_N)}"
    )
    assert pub.acked == LOSS_N
    assert got.distinct == LOSS_N, got.summary(LOSS_N)
    if not pub.reconnects:  # else what it resent may come twice, after later ones
        assert got.got == list(range(LOSS_N)), got.summary(LOSS_N)


async def test_a_node_stops_mid_peak_no_event_lost(
    daemon_factory: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    """2,000 door events through a 3-node RabbitMQ cluster; the daemon's node stops after 150,
    while the rest are published; the daemon moves to the next node; all are stored once and
    the peak is sent once. r1 rejoins, r2 is killed: the daemon moves on, 100 more stored."""
    cluster = RabbitCluster(tmp_path / "rabbit", conf={"mqtt.durable_queue_type": "quorum"})
    await asyncio.to_thread(cluster.start)
    r1, r2, _ = cluster.nodes
    try:
        found = await node_stops_mid_peak(
            "rabbitmq",
            cluster.nodes,
            daemon_factory,
            tmp_path,
            stop_first=r1.stop,
            first_back=lambda: cluster.restart(r1),
            stop_second=lambda: r2.stop(True),
        )
    finally:
        await asyncio.to_thread(cluster.stop)
    print("\n" + found.line)
    assert (found.stored, found.peaks_sent, found.moved) == (EXPECTED_STORED, 1, (True, True))
