"""The daemon as a real process against a real Mosquitto: ingest, dedupe, crashes, restarts."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from hallwatch.sensors.publish import publish_all
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import ROOT, DaemonProcess, wait_until
from tests.harness.mosquitto import Mosquitto

SERVICES = ("提取", "缴存", "贷款", "转移")


def issued(i: int, hall: str = "h1", run: str = "") -> tuple[str, bytes]:
    """An `issued` ticket event with ts now, so it belongs to today's business day."""
    body = {
        "id": f"tm-01:{run}{i}",
        "ts": int(time.time() * 1000),
        "type": "issued",
        "ticket": f"A{run}{i}",
        "service": SERVICES[i % 4],
        "priority": ("normal", "green", "appointment")[i % 3],
    }
    return f"hall/{hall}/ticket", json.dumps(body, ensure_ascii=False).encode()


def stored(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        con.close()


def distinct_stored(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return int(con.execute("SELECT count(DISTINCT key) FROM events").fetchone()[0])
    finally:
        con.close()


def test_events_reach_metrics(broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]):
    """Ticket, window, door, device and system events published with paho show up in /metrics."""
    d = daemon_factory(broker.url)
    d.start()
    now = int(time.time() * 1000)
    msgs = [issued(i) for i in range(6)]
    msgs += [
        (
            "hall/h1/window/w1",
            json.dumps(
                {"id": "wt-1:1", "ts": now, "state": "open", "services": ["提取", "缴存"]}
            ).encode(),
        ),
        (
            "hall/h1/door/d1",
            json.dumps({"id": "dc-1:1", "ts": now, "in_total": 100, "out_total": 90}).encode(),
        ),
        (
            "hall/h1/door/d1",
            json.dumps({"id": "dc-1:2", "ts": now + 1, "in_total": 107, "out_total": 91}).encode(),
        ),
        (
            "hall/h1/device/tm-01",
            json.dumps(
                {"id": "tm-01:hb1", "ts": now, "state": "online", "kind": "ticket_machine"}
            ).encode(),
        ),
        ("hall/h1/system/core", json.dumps({"id": "core:1", "ts": now, "state": "down"}).encode()),
    ]
    publish_all("127.0.0.1", broker.port, msgs)
    wait_until(lambda: d.sample("hallwatch_events_total", result="accepted") == len(msgs))
    assert d.total("hallwatch_queue_waiting", hall="h1") == 6
    assert d.sample("hallwatch_queue_waiting", hall="h1", service="缴存", priority="green") == 1
    assert d.sample("hallwatch_hall_headcount", hall="h1") == 6  # +7 in, +1 out
    assert d.sample("hallwatch_windows_open", hall="h1") == 1
    assert d.sample("hallwatch_device_up", hall="h1", device="tm-01", kind="ticket_machine") == 1
    assert d.sample("hallwatch_system_state", hall="h1", system="core", state="down") == 1
    assert d.sample("hallwatch_mqtt_connected") == 1
    assert d.sample("hallwatch_event_lag_seconds_count") == len(msgs)
    assert d.stop() == 0


def test_duplicates_count_once(broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]):
    """The same event id published three times is stored and applied once, counted twice as dup."""
    d = daemon_factory(broker.url)
    d.start()
    msg = issued(1)
    publish_all("127.0.0.1", broker.port, [msg, msg, msg, issued(2)])
    # The four may arrive in two batches: wait for the last one, not only for the duplicates.
    wait_until(lambda: d.sample("hallwatch_events_total", result="accepted") == 2)
    assert d.sample("hallwatch_events_total", result="duplicate") == 2
    assert d.sample("hallwatch_tickets_today", hall="h1", event="issued") == 2
    assert stored(d.db) == 2


def test_every_rejection_reason_is_counted(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
):
    """Each kind of bad input is rejected with its reason, stored for ops, and ingest goes on."""
    d = daemon_factory(broker.url)
    d.start()
    ok = {"id": "x:1", "ts": 1795654800000, "type": "issued", "ticket": "A1", "service": "提取"}

    def with_(**kw: object) -> bytes:
        return json.dumps({**ok, **kw}).encode()

    bad = {
        "too_large": ("hall/h1/ticket", with_(summary="x" * 70000)),
        "bad_json": ("hall/h1/ticket", b"{not json"),
        "not_object": ("hall/h1/ticket", b"[1, 2]"),
        "bad_topic_id": ("hall/h 1/ticket", with_()),
        "missing_field": ("hall/h1/ticket", json.dumps({"id": "x:2", "ts": 1}).encode()),
        "wrong_type": (
            "hall/h1/door/d1",
            json.dumps({"id": "x:3", "ts": 1, "in_total": "7", "out_total": 0}).encode(),
        ),
        "unknown_type": ("hall/h1/ticket", with_(type="teleported")),
        "bad_value": (
            "hall/h1/window/w1",
            json.dumps({"id": "x:4", "ts": 1, "state": "ajar", "services": []}).encode(),
        ),
        "bad_id": ("hall/h1/ticket", with_(id="")),
        "bad_ts": ("hall/h1/ticket", with_(ts="yesterday")),
    }
    publish_all("127.0.0.1", broker.port, [*bad.values(), issued(9)])
    wait_until(lambda: d.sample("hallwatch_events_total", result="accepted") == 1)
    wait_until(lambda: d.sample("hallwatch_events_total", result="rejected") == len(bad))
    for reason in bad:
        assert d.sample("hallwatch_events_rejected_total", reason=reason) == 1, reason
    con = sqlite3.connect(d.db)
    reasons = sorted(r for (r,) in con.execute("SELECT reason FROM rejects"))
    con.close()
    assert reasons == sorted(bad)
    assert "rejected" in d.log.read_text()


def test_broker_restart_mid_stream_loses_nothing(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
):
    """A broker restart while 3,000 events stream in: every one is stored and applied once."""
    d = daemon_factory(broker.url)
    d.start()
    n = 3000
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            publish_resilient(broker.port, [issued(i, run="r") for i in range(n)])
        except BaseException as err:
            errors.append(err)

    t = threading.Thread(target=publish)
    t.start()
    wait_until(lambda: d.health()["last_seq"] > 200, what="the stream to start")
    broker.restart()
    t.join(120)
    assert not t.is_alive() and not errors, errors
    wait_until(lambda: d.sample("hallwatch_tickets_today", hall="h1", event="issued") == n, 60)
    assert stored(d.db) == distinct_stored(d.db) == n
    assert d.total("hallwatch_queue_waiting", hall="h1") == n
    assert d.sample("hallwatch_mqtt_reconnects_total") >= 1
    wait_until(d.healthy, 30, "the daemon to reconnect")


def test_kill9_mid_stream_counts_each_event_once(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
):
    """kill -9 amid 5,000 QoS 1 events, then a restart: every event is counted exactly once."""
    d = daemon_factory(broker.url)
    d.start()
    n = 5000
    pub = threading.Thread(
        target=publish_all, args=("127.0.0.1", broker.port, [issued(i, run="k") for i in range(n)])
    )
    pub.start()
    wait_until(lambda: int(d.health()["last_seq"]) >= 500, what="some events to be stored")
    d.kill9()
    before = stored(d.db)
    assert before < n, "the kill should land mid-stream"
    pub.join(120)
    d.start()
    wait_until(lambda: d.sample("hallwatch_tickets_today", hall="h1", event="issued") == n, 60)
    assert stored(d.db) == distinct_stored(d.db) == n
    assert d.total("hallwatch_queue_waiting", hall="h1") == n
    # The restart rebuilt the state from the store, not from the broker's redelivery alone.
    assert d.sample("hallwatch_restore_replayed_events") == before
    time.sleep(1.0)
    assert d.sample("hallwatch_tickets_today", hall="h1", event="issued") == n


def test_events_published_while_down_arrive_after_restart(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
):
    """The persistent session keeps events published while the daemon is stopped."""
    d = daemon_factory(broker.url)
    d.start()
    publish_all("127.0.0.1", broker.port, [issued(i, run="a") for i in range(10)])
    wait_until(lambda: d.sample("hallwatch_tickets_today", hall="h1", event="issued") == 10)
    assert d.stop() == 0
    publish_all("127.0.0.1", broker.port, [issued(i, run="b") for i in range(1500)])
    d.start()
    wait_until(lambda: d.sample("hallwatch_tickets_today", hall="h1", event="issued") == 1510, 60)
    assert stored(d.db) == 1510
    # A clean stop wrote a snapshot, so the restart replayed nothing.
    assert d.sample("hallwatch_restore_replayed_events") == 0


def test_sigterm_drains_and_exits_zero(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
):
    """SIGTERM under load: the process exits 0 and whatever it acknowledged is stored."""
    d = daemon_factory(broker.url)
    d.start()
    pub = threading.Thread(
        target=publish_all,
        args=("127.0.0.1", broker.port, [issued(i, run="t") for i in range(3000)]),
    )
    pub.start()
    wait_until(lambda: int(d.health()["last_seq"]) >= 100, what="some events stored")
    assert d.stop() == 0
    pub.join(60)
    d.start()
    wait_until(lambda: d.sample("hallwatch_tickets_today", hall="h1", event="issued") == 3000, 60)
    assert stored(d.db) == 3000


def test_bad_config_stops_startup_naming_the_key(tmp_path: Path):
    """A bad value in the config file stops `hallwatch run` with exit 2 and the key's name."""
    cfg = tmp_path / "hallwatch.toml"
    cfg.write_text('[mqtt]\nurl = "mqtt://127.0.0.1:1883"\nreceive_maximum = 0\n')
    proc = subprocess.run(
        [sys.executable, "-m", "hallwatch.daemon.cli", "run", "--config", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "mqtt.receive_maximum" in proc.stderr


def publish_resilient(port: int, messages: list[tuple[str, bytes]], timeout: float = 90) -> None:
    """Publish at QoS 1 through broker restarts: paho reconnects and resends unacknowledged ones."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="resilient-pub", clean_session=False
    )
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(0.1, 1)
    acked: set[int] = set()
    lock = threading.Lock()

    def on_publish(c: mqtt.Client, u: object, mid: int, rc: object, p: object) -> None:
        with lock:
            acked.add(mid)

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        mids = [client.publish(t, p, qos=1).mid for t, p in messages]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with lock:
                if acked.issuperset(mids):
                    return
            time.sleep(0.05)
        raise TimeoutError(f"{len(set(mids) - acked)} publishes never acknowledged")
    finally:
        client.disconnect()
        client.loop_stop()


def test_event_from_the_future_is_rejected_not_applied(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
):
    """An event stamped a day ahead (bad device clock) is rejected as bad_ts and moves no day."""
    d = daemon_factory(broker.url)
    d.start()
    ahead = json.loads(issued(1, run="f")[1])
    ahead["ts"] += 86_400_000
    publish_all(
        "127.0.0.1",
        broker.port,
        [("hall/h1/ticket", json.dumps(ahead).encode()), issued(2, run="f")],
    )
    wait_until(lambda: d.sample("hallwatch_events_total", result="accepted") == 1)
    wait_until(lambda: d.sample("hallwatch_events_rejected_total", reason="bad_ts") == 1)
    # Today's ticket counts: the future event did not start a new business day.
    assert d.sample("hallwatch_tickets_today", hall="h1", event="issued") == 1


def test_sigterm_stops_promptly_while_the_broker_is_gone(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
):
    """With the broker killed under it (so aiomqtt's disconnect fails), SIGTERM still stops it."""
    d = daemon_factory(broker.url)
    d.start()
    publish_all("127.0.0.1", broker.port, [issued(i, run="g") for i in range(50)])
    wait_until(lambda: d.sample("hallwatch_tickets_today", hall="h1", event="issued") == 50)
    broker.stop(signal.SIGKILL)
    time.sleep(0.5)
    started = time.monotonic()
    assert d.stop(timeout=20) == 0
    assert time.monotonic() - started < 15
    assert "did not stop" not in d.log.read_text()


def test_ingest_says_when_events_wait_and_when_a_batch_is_in_hand(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """Against a real Mosquitto and a real store: while 2,000 events stream in, `waiting` is
    seen true (messages received, not yet taken) and, while a batch is applied, `busy` is
    true and `waiting` false (the estimator lane goes on while a batch is stored); once every
    event is stored both are false. These are what the tick and the lane give way to."""
    import asyncio

    from hallwatch.daemon.config.sections import MqttSettings, StoreSettings
    from hallwatch.daemon.config.settings import Settings
    from hallwatch.daemon.metrics.families import IngestMetrics
    from hallwatch.daemon.mqtt.ingest import Ingest
    from hallwatch.daemon.store.events import Store
    from prometheus_client import CollectorRegistry

    settings = Settings(
        mqtt=MqttSettings(url=broker.url, client_id="busy-probe"),
        store=StoreSettings(path=str(tmp_path / "events.db")),
    )
    in_hand: list[tuple[bool, bool]] = []
    seen_waiting: list[bool] = []
    applied = [0]

    async def main() -> tuple[bool, bool]:
        async with Store(tmp_path / "events.db") as store:
            ingest: Ingest

            def process(_event: object) -> None:
                applied[0] += 1
                in_hand.append((ingest.busy(), ingest.waiting()))

            ingest = Ingest(settings, store, process, IngestMetrics(CollectorRegistry()))
            task = asyncio.create_task(ingest.run())
            for _ in range(500):  # connected: polled, Ingest has no event for it
                if ingest.connected:
                    break
                await asyncio.sleep(0.01)
            sender = threading.Thread(
                target=publish_all,
                args=("127.0.0.1", broker.port, [issued(i, f"h{i % 20}") for i in range(2000)]),
            )
            sender.start()
            deadline = time.monotonic() + 60
            while applied[0] < 2000 and time.monotonic() < deadline:
                seen_waiting.append(ingest.waiting())
                await asyncio.sleep(0)
            sender.join()
            await asyncio.sleep(0.2)
            after = (ingest.busy(), ingest.waiting())
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return after

    after = asyncio.run(main())
    assert applied[0] == 2000
    assert in_hand and all(busy and not waiting for busy, waiting in in_hand)
    assert any(seen_waiting)
    assert after == (False, False)
