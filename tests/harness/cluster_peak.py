"""The daemon on a three-node MQTT broker cluster, its node stopped mid-peak: the scenario the
NATS and RabbitMQ cluster tests share (tests/daemon/mqtt/test_*_cluster.py). The daemon names
the other nodes in `mqtt.more_urls`; it must move on, store every event once and send the peak
once."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from hallwatch.sensors.publish import publish_all

from tests.alerts.test_alert_e2e import wait_for
from tests.alerts.test_one_voice import config
from tests.conftest import DaemonProcess
from tests.harness.alert_fakes import FakeWecom, serve

N = 2000  # door events: FIRST before the node stops, the rest while it stops and after
FIRST = 150
MORE = 100  # after the stopped node rejoined and another stopped


class Outcome(NamedTuple):
    """What the scenario found: events stored, peaks sent, the nodes the daemon moved to."""

    stored: int
    peaks_sent: int
    moved: tuple[bool, bool]  # connected to the second node, then to the third
    line: str


EXPECTED_STORED = N + MORE + 1  # every door event and the probe, once


class Node(Protocol):
    @property
    def mqtt_url(self) -> str: ...
    @property
    def mqtt_port(self) -> int: ...


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


async def node_stops_mid_peak(
    name: str,
    nodes: Sequence[Node],
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
    *,
    stop_first: Callable[[], None],
    first_back: Callable[[], None],
    stop_second: Callable[[], None],
) -> Outcome:
    """Door events through the cluster's three `nodes`: FIRST of them, then the daemon's node
    (the first) stops (`stop_first`) while the rest of N are published; it comes back
    (`first_back`) and the daemon's next node stops (`stop_second`) before MORE. Asserts every
    event stored once, the peak sent once, the daemon on the second then the third node; returns
    what it found, with the figures as a line."""
    n1, n2, n3 = nodes
    wecom = FakeWecom()
    async with serve(wecom.app()) as url:
        env = {
            "HALLWATCH_CONFIG": str(config(tmp_path, url, repeat_s=0)),
            "HALLWATCH_MQTT_PROTOCOL": "3.1.1",
            "HALLWATCH_MQTT_MORE_URLS": f"{n2.mqtt_url},{n3.mqtt_url}",
            "HALLWATCH_MQTT_CLIENT_ID": f"{name}-cluster-daemon",
        }
        d = daemon_factory(n1.mqtt_url, extra_env=env)
        await asyncio.to_thread(d.start)
        # A broker may make the session's queues (NATS: a JetStream consumer a filter, ~0.3 s
        # each) before the SUBACK; what is published before is not the session's. A probe
        # until it lands.
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
        await asyncio.gather(rest, asyncio.to_thread(stop_first))
        await wait_for(
            lambda: d.total("hallwatch_events_total", result="accepted") >= N + 1,
            60,
            "every event stored",
        )
        caught_up = time.monotonic() - stopped_at
        dups = d.total("hallwatch_events_total", result="duplicate") - dups_before
        # The first node comes back; then the second, where the daemon is now, goes down.
        await asyncio.to_thread(first_back)
        await asyncio.to_thread(stop_second)
        await asyncio.to_thread(publish_all, "127.0.0.1", n1.mqtt_port, doors(N, N + MORE))
        await wait_for(
            lambda: d.total("hallwatch_events_total", result="accepted") >= N + MORE + 1,
            60,
            "the events after the second stop stored",
        )
        await asyncio.sleep(2.0)
        assert await asyncio.to_thread(d.stop, signal.SIGTERM) == 0
    count = stored(d.db)
    assert count == EXPECTED_STORED, "every event (and the probe) stored once"
    firing = [h for h in wecom.accepted if "结束" not in h.body["markdown"]["content"]]
    assert len(firing) == 1, "the peak sent once"
    log = d.log.read_text()
    moved = (f"connects to {n2.mqtt_url}" in log, f"connects to {n3.mqtt_url}" in log)
    assert moved == (True, True), "moved to the next node, and on to the one after"
    return Outcome(
        count,
        len(firing),
        moved,
        f"{name} cluster: {N} events stored; all in {caught_up:.2f} s after the first node"
        f" stopped; redelivered after the stop (duplicates) {dups:.0f}",
    )
