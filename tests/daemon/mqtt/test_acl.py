"""The broker lock-down of deploy/mosquitto/acl.example, on a real Mosquitto with passwords:
a device can publish into its own hall only, and the daemon never sees a forged event."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import ROOT, DaemonProcess, wait_until
from tests.harness.mosquitto import Mosquitto

ACL = ROOT / "deploy" / "mosquitto" / "acl.example"
USERS = ("hallwatch", "h1-tm-01", "h2-tm-01", "h1-display")


def pw(user: str) -> str:
    return f"pw-{user}-x7"


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Mosquitto]:
    """Mosquitto with the example ACL, a password per user, and no anonymous access."""
    passwd = tmp_path / "passwd"
    for i, user in enumerate(USERS):
        flags = ["-c"] if i == 0 else []
        subprocess.run(
            ["mosquitto_passwd", *flags, "-b", str(passwd), user, pw(user)],
            check=True,
            capture_output=True,
        )
    passwd.chmod(0o600)
    mosq = Mosquitto(
        tmp_path / "mosq",
        listener_extra=f"password_file {passwd}\nacl_file {ACL}",
        anonymous=False,
    )
    mosq.start()
    yield mosq
    mosq.stop()


def issued(hall: str, n: int) -> bytes:
    body = {
        "id": f"tm-01:acl{n}",
        "ts": int(time.time() * 1000),
        "type": "issued",
        "ticket": f"A{n}",
        "service": "提取",
    }
    return json.dumps(body, ensure_ascii=False).encode()


def publish_as(port: int, user: str, msgs: list[tuple[str, bytes]]) -> None:
    """Publish each message at QoS 1 as `user` on a connection of its own: Mosquitto 2.0
    acknowledges a publish the ACL denies, drops it, and then closes the connection."""
    for topic, payload in msgs:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-test")
        c.username_pw_set(user, pw(user))
        c.connect("127.0.0.1", port)
        c.loop_start()
        try:
            wait_until(c.is_connected, 10, f"{user} to log in")
            c.publish(topic, payload, qos=1).wait_for_publish(10)
        finally:
            c.disconnect()
            c.loop_stop()


def keys(db: Path) -> set[str]:
    con = sqlite3.connect(db)
    try:
        return {k for (k,) in con.execute("SELECT key FROM events")}
    finally:
        con.close()


def test_device_cannot_publish_into_another_hall(
    locked: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    """h1's ticket machine reaches hall h1; its events for h2 (ticket and a fake heartbeat) are
    dropped by the broker, while h2's own machine gets through; the daemon logs in as itself."""
    d = daemon_factory(
        f"mqtt://127.0.0.1:{locked.port}",
        extra_env={
            "HALLWATCH_MQTT_USERNAME": "hallwatch",
            "HALLWATCH_MQTT_PASSWORD": pw("hallwatch"),
        },
    )
    d.start()
    time.sleep(0.3)  # subscriptions in place
    now = int(time.time() * 1000)
    heartbeat = {"id": "forged:1", "ts": now, "state": "offline", "kind": "other"}
    forged = [
        ("hall/h2/ticket", issued("h2", 2)),
        ("hall/h2/device/tm-01", json.dumps(heartbeat).encode()),
    ]
    publish_as(locked.port, "h1-tm-01", [("hall/h1/ticket", issued("h1", 1)), *forged])
    publish_as(locked.port, "h2-tm-01", [("hall/h2/ticket", issued("h2", 3))])
    wait_until(lambda: d.sample("hallwatch_events_total", result="accepted") == 2)
    time.sleep(0.5)  # a forged event that got through would be stored by now
    assert keys(d.db) == {"h1/tm-01:acl1", "h2/tm-01:acl3"}
    assert d.sample("hallwatch_tickets_today", hall="h2", event="issued") == 1
    assert d.sample("hallwatch_device_up", hall="h2", device="tm-01", kind="other") is None


def test_display_reads_status_but_cannot_publish_tickets(
    locked: Mosquitto, daemon_factory: Callable[..., DaemonProcess]
) -> None:
    """The hall display receives the daemon's retained status for its hall; a ticket it tries
    to publish never reaches the daemon."""
    d = daemon_factory(
        f"mqtt://127.0.0.1:{locked.port}",
        extra_env={
            "HALLWATCH_MQTT_USERNAME": "hallwatch",
            "HALLWATCH_MQTT_PASSWORD": pw("hallwatch"),
        },
    )
    d.start()
    time.sleep(0.3)
    publish_as(locked.port, "h1-tm-01", [("hall/h1/ticket", issued("h1", 1))])
    publish_as(locked.port, "h1-display", [("hall/h1/ticket", issued("h1", 9))])
    wait_until(lambda: d.sample("hallwatch_events_total", result="accepted") == 1)
    got: list[str] = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="display-read")
    c.username_pw_set("h1-display", pw("h1-display"))
    c.on_message = lambda cl, u, msg: got.append(msg.topic)
    c.connect("127.0.0.1", locked.port)
    c.subscribe([("hall/h1/status", 1), ("hall/h2/status", 1), ("hall/h1/ticket", 1)])
    c.loop_start()
    try:
        wait_until(lambda: "hall/h1/status" in got, 15, "the retained status of h1")
        time.sleep(0.5)
    finally:
        c.disconnect()
        c.loop_stop()
    assert set(got) == {"hall/h1/status"}  # not h2's status, not the raw tickets
    assert keys(d.db) == {"h1/tm-01:acl1"}
