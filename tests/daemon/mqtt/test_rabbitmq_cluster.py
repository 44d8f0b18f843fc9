"""A clustered broker: a three-node RabbitMQ cluster (Debian's 3.10, its MQTT plugin) of the
test's own (tests/harness/rabbitmq.py), persistent MQTT sessions as quorum queues.

The check that NATS 2.9.10 fails (an offline QoS 1 session loses what is published while a node
is stopped), here with plain paho clients; then the daemon itself, `mqtt.more_urls` naming the
other nodes, its node stopped mid-peak: every event stored once."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hallwatch.sensors.publish import publish_all

from tests.alerts.test_alert_e2e import wait_for
from tests.alerts.test_one_voice import config
from tests.conftest import DaemonProcess
from tests.daemon.mqtt.test_nats_cluster import FIRST, MORE, N, doors, probe, stored
from tests.harness.alert_fakes import FakeWecom, serve
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
    wecom = FakeWecom()
    try:
        async with serve(wecom.app()) as url:
            r1, r2, r3 = cluster.nodes
            env = {
                "HALLWATCH_CONFIG": str(config(tmp_path, url, repeat_s=0)),
                "HALLWATCH_MQTT_PROTOCOL": "3.1.1",
                "HALLWATCH_MQTT_MORE_URLS": f"{r2.mqtt_url},{r3.mqtt_url}",
                "HALLWATCH_MQTT_CLIENT_ID": "rabbit-cluster-daemon",
            }
            d = daemon_factory(r1.mqtt_url, extra_env=env)
            await asyncio.to_thread(d.start)
            for _ in range(60):  # until the daemon's subscription is made
                await asyncio.to_thread(publish_all, "127.0.0.1", r2.mqtt_port, probe())
                if d.total("hallwatch_events_total", result="accepted") >= 1:
                    break
                await asyncio.sleep(0.5)
            await asyncio.to_thread(publish_all, "127.0.0.1", r2.mqtt_port, doors(0, FIRST))
            await wait_for(lambda: bool(wecom.accepted), 30, "the peak's WeCom message")
            dups_before = d.total("hallwatch_events_total", result="duplicate")
            stopped_at = time.monotonic()
            rest = asyncio.to_thread(publish_all, "127.0.0.1", r2.mqtt_port, doors(FIRST, N))
            await asyncio.gather(rest, asyncio.to_thread(r1.stop))
            await wait_for(
                lambda: d.total("hallwatch_events_total", result="accepted") >= N + 1,
                60,
                "every event stored",
            )
            caught_up = time.monotonic() - stopped_at
            dups = d.total("hallwatch_events_total", result="duplicate") - dups_before
            # r1 comes back; then r2, where the daemon is now, is killed.
            await asyncio.to_thread(cluster.restart, r1)
            await asyncio.to_thread(r2.stop, True)
            await asyncio.to_thread(publish_all, "127.0.0.1", r1.mqtt_port, doors(N, N + MORE))
            await wait_for(
                lambda: d.total("hallwatch_events_total", result="accepted") >= N + MORE + 1,
                60,
                "the events after the kill stored",
            )
            await asyncio.sleep(2.0)
            assert await asyncio.to_thread(d.stop, signal.SIGTERM) == 0
    finally:
        await asyncio.to_thread(cluster.stop)
    assert stored(d.db) == N + MORE + 1, "every event (and the probe) stored once"
    firing = [h for h in wecom.accepted if "结束" not in h.body["markdown"]["content"]]
    assert len(firing) == 1, "the peak sent once"
    log = d.log.read_text()
    assert f"connects to {r2.mqtt_url}" in log, "moved to the next node"
    assert f"connects to {r3.mqtt_url}" in log, "and on to the one after"
    print(
        f"\nrabbitmq cluster: {N} events stored; all in {caught_up:.2f} s after r1 stopped;"
        f" redelivered after the stop (duplicates) {dups:.0f}"
    )
