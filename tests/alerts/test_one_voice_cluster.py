"""The whole pair at once: a three-node NATS cluster (tests/harness/nats.py), one private
PostgreSQL, two `hallwatch run` processes each starting on its own node, a WeCom-style receiver.
Mid-peak the sending daemon is killed with -9 and the survivor's broker node is stopped; later
the killed daemon comes back. Every notification reaches the receiver exactly once and both
daemons end with the hall's true headcount."""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hallwatch.sensors.publish import publish_all

from tests.alerts.test_alert_e2e import door, wait_for
from tests.alerts.test_one_voice import LEASE_S, config, outbox
from tests.conftest import DaemonProcess
from tests.harness.alert_fakes import FakeWecom, serve
from tests.harness.cluster_peak import probe
from tests.harness.nats import NatsCluster, find_nats

pytestmark = pytest.mark.skipif(find_nats() is None, reason="nats-server is not installed")


async def test_pair_on_a_nats_cluster_kill_and_node_stop_each_notification_once(
    daemon_factory: Callable[..., DaemonProcess], tmp_path: Path, pg_url: str
) -> None:
    """Two daemons on three NATS nodes and one PostgreSQL: a peak; the sender killed with -9
    and the survivor's node stopped mid-peak; the crowd leaves; the killed one restarts. Each
    stored notification shown once, one alert id, both daemons end at the true headcount."""
    cluster = NatsCluster(tmp_path / "nats")
    await asyncio.to_thread(cluster.start)
    nodes = cluster.nodes
    wecom = FakeWecom()
    try:
        async with serve(wecom.app()) as url:
            cfg = config(tmp_path, url)
            daemons: dict[str, DaemonProcess] = {}
            for i, name in enumerate(("hw-a", "hw-b")):
                more = [n.mqtt_url for n in nodes[i + 1 :] + nodes[:i]]
                env = {
                    "HALLWATCH_CONFIG": str(cfg),
                    "HALLWATCH_STORE_URL": pg_url,
                    "HALLWATCH_STORE_INSTANCE": name,
                    "HALLWATCH_STORE_LEASE_S": str(LEASE_S),
                    "HALLWATCH_MQTT_CLIENT_ID": f"pair-{name}",
                    "HALLWATCH_MQTT_PROTOCOL": "3.1.1",
                    "HALLWATCH_MQTT_MORE_URLS": ",".join(more),
                }
                daemons[name] = daemon_factory(nodes[i].mqtt_url, extra_env=env)
                await asyncio.to_thread(daemons[name].start)
            sensors = nodes[2].mqtt_port  # the halls' gateway publishes through n3
            for _ in range(60):  # until both sessions have their subscriptions
                await asyncio.to_thread(publish_all, "127.0.0.1", sensors, probe())
                if all(
                    d.total("hallwatch_events_total", result="accepted") >= 1
                    for d in daemons.values()
                ):
                    break
                await asyncio.sleep(0.5)
            await asyncio.to_thread(publish_all, "127.0.0.1", sensors, [door(1, 125, 100)])
            await wait_for(lambda: len(wecom.accepted) >= 3, 30, "the firing and two repeats")
            sender = next(r[2] for r in outbox(pg_url) if r[1] == "sent")
            survivor = "hw-b" if sender == "hw-a" else "hw-a"
            killed_at = time.time()
            await asyncio.to_thread(daemons[sender].kill9)
            await asyncio.to_thread(nodes[0 if survivor == "hw-a" else 1].stop)
            shown_at_kill = len(wecom.accepted)
            await wait_for(
                lambda: len(wecom.accepted) >= shown_at_kill + 2, 30, "the survivor's repeats"
            )
            first_after = min(h.at for h in wecom.accepted[shown_at_kill:])
            await asyncio.to_thread(publish_all, "127.0.0.1", sensors, [door(2, 125, 120)])
            await wait_for(
                lambda: any("结束" in h.body["markdown"]["content"] for h in wecom.accepted),
                30,
                "the resolved notice",
            )
            await asyncio.to_thread(daemons[sender].start)  # back, on a node still up
            for d in daemons.values():
                await wait_for(
                    lambda d=d: d.sample("hallwatch_hall_headcount", hall="h1") == 5,
                    30,
                    "the hall's true headcount (5) in both daemons",
                )
            await asyncio.sleep(3.0)  # anything late or twice would show by now
            for d in daemons.values():
                assert await asyncio.to_thread(d.stop, signal.SIGTERM) == 0
    finally:
        await asyncio.to_thread(cluster.stop)
    rows = outbox(pg_url)
    ids = {r[0].split("/")[0] for r in rows}
    states = collections.Counter(r[0].split("/")[1].split("-")[1] for r in rows)
    assert len(ids) == 1, f"one alert id for both daemons, got {ids}"
    assert states["firing"] == 1 and states["resolved"] == 1, states
    assert all(r[1] == "sent" for r in rows), rows
    assert len(wecom.accepted) == len(rows), "each stored notification shown exactly once"
    print(
        f"\npair on NATS: {len(rows)} notifications ({dict(states)}), {len(wecom.accepted)}"
        f" shown; {sender} killed after {shown_at_kill} and {survivor}'s node stopped;"
        f" survivor's first delivery {first_after - killed_at:.2f} s after the kill"
    )
