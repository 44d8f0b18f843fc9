"""Two instances, one voice, with real daemons: two `hallwatch run` processes (own client ids,
own instance names) on one Mosquitto and one private PostgreSQL, one WeCom-style receiver. Both
see the same peak and make the same alert id and keys; one sends; after its kill -9 the survivor
sends the rest, each notification exactly once."""

from __future__ import annotations

import asyncio
import collections
import signal
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from hallwatch.sensors.publish import publish_all

from tests.alerts.test_alert_e2e import door, wait_for
from tests.conftest import DaemonProcess
from tests.harness.alert_fakes import FakeWecom, serve
from tests.harness.mosquitto import Mosquitto

LEASE_S = 3.0
REPEAT_S = 2.0


def config(tmp_path: Path, wecom_url: str, repeat_s: float = REPEAT_S) -> Path:
    """Alerts at any hour of a day declared working; a peak after 1 s, repeated every 2 s."""
    now = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    path = tmp_path / "hallwatch.toml"
    path.write_text(
        f"""
[calendar]
workdays = ["{now.isoformat()}"]
complete_years = [{now.year}, {now.year + 1}]

[alerts]
open = "00:00"
close = "23:59"

[alerts.queue_peak]
for_s = 1
clear_for_s = 2
repeat_s = {repeat_s}

[alerts.wecom]
url = "{wecom_url}/cgi-bin/webhook/send"

[alerts.wecom.robots.supervisor]
key = "robot-supervisor"

[alerts.roles.supervisor]
wecom = ["supervisor"]
""",
        encoding="utf-8",
    )
    return path


def outbox(pg_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg_url) as con:
        cur = con.execute(
            "SELECT key, state, claimed_by, done_at FROM hallwatch.alert_outbox ORDER BY seq"
        )
        return cur.fetchall()


async def test_two_daemons_one_peak_each_notification_once_across_a_kill(
    broker: Mosquitto,
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
    pg_url: str,
) -> None:
    """Two daemons on one PostgreSQL fire one peak under one alert id (firing, repeats, resolved
    each stored once); the sender is killed with -9 mid-peak; the survivor delivers the rest;
    the receiver shows each notification exactly once."""
    wecom = FakeWecom()
    async with serve(wecom.app()) as url:
        cfg = config(tmp_path, url)
        daemons = {}
        for name in ("hw-a", "hw-b"):
            env = {
                "HALLWATCH_CONFIG": str(cfg),
                "HALLWATCH_STORE_URL": pg_url,
                "HALLWATCH_STORE_INSTANCE": name,
                "HALLWATCH_STORE_LEASE_S": str(LEASE_S),
                "HALLWATCH_MQTT_CLIENT_ID": f"one-voice-{name}",
            }
            daemons[name] = daemon_factory(broker.url, extra_env=env)
            await asyncio.to_thread(daemons[name].start)
        pub = [door(0, 100, 100), door(1, 125, 100)]
        await asyncio.to_thread(publish_all, "127.0.0.1", broker.port, pub)
        await wait_for(lambda: len(wecom.accepted) >= 3, 30, "the firing and two repeats")
        sent = [r for r in outbox(pg_url) if r[1] == "sent"]
        sender = sent[0][2]
        survivor = "hw-b" if sender == "hw-a" else "hw-a"
        killed_at = time.time()
        await asyncio.to_thread(daemons[sender].kill9)
        shown_at_kill = len(wecom.accepted)
        await wait_for(
            lambda: len(wecom.accepted) >= shown_at_kill + 2, 30, "the survivor's repeats"
        )
        first_after = min(h.at for h in wecom.accepted[shown_at_kill:])
        await asyncio.to_thread(publish_all, "127.0.0.1", broker.port, [door(2, 125, 120)])
        await wait_for(
            lambda: any("结束" in h.body["markdown"]["content"] for h in wecom.accepted),
            30,
            "the resolved notice",
        )
        await asyncio.sleep(REPEAT_S + 1)  # anything late or twice would show by now
        assert await asyncio.to_thread(daemons[survivor].stop, signal.SIGTERM) == 0
    rows = outbox(pg_url)
    ids = {r[0].split("/")[0] for r in rows}
    states = collections.Counter(r[0].split("/")[1].split("-")[1] for r in rows)
    assert len(ids) == 1, f"one alert id for both daemons, got {ids}"
    assert states["firing"] == 1 and states["resolved"] == 1, states
    assert all(r[1] == "sent" for r in rows), rows
    assert len(wecom.accepted) == len(rows), "each stored notification shown exactly once"
    after = [r for r in rows if r[3] is not None and r[3] > killed_at]
    assert after and all(r[2] == survivor for r in after), "the survivor sent the rest"
    print(
        f"\none voice: {len(rows)} notifications ({dict(states)}), {len(wecom.accepted)} shown;"
        f" sender {sender} killed after {shown_at_kill}; survivor's first delivery"
        f" {first_after - killed_at:.2f} s after the kill (lease {LEASE_S} s)"
    )
