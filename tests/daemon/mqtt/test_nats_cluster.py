"""A clustered broker: the daemon on a three-node NATS JetStream cluster's MQTT listeners
(tests/harness/nats.py), `mqtt.more_urls` naming the other nodes. The node the daemon is
connected to stops mid-peak; the daemon reconnects to the next node, resumes its QoS 1 session
(kept in JetStream, replicated) and loses no event."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hallwatch.sensors.publish import publish_all

from tests.alerts.test_alert_e2e import wait_for
from tests.alerts.test_one_voice import config
from tests.conftest import DaemonProcess
from tests.harness.alert_fakes import FakeWecom, serve
from tests.harness.nats import NatsCluster, find_nats

pytestmark = pytest.mark.skipif(find_nats() is None, reason="nats-server is not installed")

N = 2000  # door events: FIRST before the node stops, the rest while it stops and after
FIRST = 150
MORE = 100  # after the stopped node rejoined and another stopped


def doors(first: int, last: int) -> list[tuple[str, bytes]]:
    """Door counts: one more person in with every event (a crowd building up)."""
    out = []
    for i in range(first, last):
        body = {"id": f"dc-1:{i}", "ts": int(time.time() * 1000), "in_total": 101 + i}
        out.append(("hall/h1/door/d1", json.dumps({**body, "out_total": 100}).encode()))
    return out


def probe() -> list[tuple[str, bytes]]:
    """An empty hall's door count, the same id every time (stored once)."""
    body = {"id": "dc-1:probe", "ts": int(time.time() * 1000), "in_total": 100, "out_total": 100}
    return [("hall/h1/door/d1", json.dumps(body).encode())]


def stored(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT count(*) FROM events").fetchone()[0])


async def test_a_node_stops_mid_peak_no_event_lost(
    daemon_factory: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    """2,000 door events through a 3-node NATS cluster; the daemon's node stops after 150,
    while the rest are published; the daemon moves to the next node; all are stored once and
    the peak is sent once. n1 rejoins, n2 stops: the daemon moves on, 100 more stored."""
    cluster = NatsCluster(tmp_path / "nats")
    await asyncio.to_thread(cluster.start)
    wecom = FakeWecom()
    try:
        async with serve(wecom.app()) as url:
            n1, n2, n3 = cluster.nodes
            env = {
                "HALLWATCH_CONFIG": str(config(tmp_path, url, repeat_s=0)),
                "HALLWATCH_MQTT_PROTOCOL": "3.1.1",
                "HALLWATCH_MQTT_MORE_URLS": f"{n2.mqtt_url},{n3.mqtt_url}",
                "HALLWATCH_MQTT_CLIENT_ID": "nats-cluster-daemon",
            }
            d = daemon_factory(n1.mqtt_url, extra_env=env)
            await asyncio.to_thread(d.start)
            # NATS makes a session's JetStream consumers (one a filter, ~0.3 s each here) before
            # the SUBACK; what is published before is not the session's. A probe until it lands.
            for _ in range(60):
                await asyncio.to_thread(publish_all, "127.0.0.1", n2.mqtt_port, probe())
                if d.total("hallwatch_events_total", result="accepted") >= 1:
                    break
                await asyncio.sleep(0.5)
            await asyncio.to_thread(publish_all, "127.0.0.1", n2.mqtt_port, doors(0, FIRST))
            await wait_for(lambda: bool(wecom.accepted), 30, "the peak's WeCom message")
            dups_before = d.total("hallwatch_events_total", result="duplicate")
            stopped_at = time.monotonic()
            rest = asyncio.to_thread(publish_all, "127.0.0.1", n2.mqtt_port, doors(FIRST, N))
            await asyncio.gather(rest, asyncio.to_thread(n1.stop))
            await wait_for(
                lambda: d.total("hallwatch_events_total", result="accepted") >= N + 1,
                60,
                "every event stored",
            )
            caught_up = time.monotonic() - stopped_at
            dups = d.total("hallwatch_events_total", result="duplicate") - dups_before
            # n1 comes back and catches up; then n2, where the daemon is now, stops too.
            await asyncio.to_thread(n1.start)
            await asyncio.to_thread(cluster.wait_ready)
            await asyncio.to_thread(n2.stop)
            await asyncio.to_thread(publish_all, "127.0.0.1", n1.mqtt_port, doors(N, N + MORE))
            await wait_for(
                lambda: d.total("hallwatch_events_total", result="accepted") >= N + MORE + 1,
                60,
                "the events after the second stop stored",
            )
            await asyncio.sleep(2.0)
            assert await asyncio.to_thread(d.stop, signal.SIGTERM) == 0
    finally:
        await asyncio.to_thread(cluster.stop)
    assert stored(d.db) == N + MORE + 1, "every event (and the probe) stored once"
    firing = [h for h in wecom.accepted if "结束" not in h.body["markdown"]["content"]]
    assert len(firing) == 1, "the peak sent once"
    log = d.log.read_text()
    assert f"connects to {n2.mqtt_url}" in log, "moved to the next node"
    assert f"connects to {n3.mqtt_url}" in log, "and on to the one after"
    print(
        f"\nnats cluster: {N} events stored; all in {caught_up:.2f} s after n1 stopped;"
        f" redelivered after the stop (duplicates) {dups:.0f}"
    )
