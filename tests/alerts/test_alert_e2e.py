"""The whole chain in real processes: door events through Mosquitto, the daemon's rules, the
outbox, and a WeCom robot (a local server speaking its API) receiving the plan's message."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hallwatch.sensors.publish import publish_all

from tests.conftest import DaemonProcess
from tests.harness.alert_fakes import FakeWecom, serve
from tests.harness.mosquitto import Mosquitto


def config(tmp_path: Path, wecom_url: str) -> Path:
    """Alerts at any hour of a day declared working, fast timers, one supervisor robot."""
    now = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    today = now.isoformat()
    path = tmp_path / "hallwatch.toml"
    path.write_text(
        f"""
[calendar]
workdays = ["{today}"]
complete_years = [{now.year}, {now.year + 1}]  # no calendar notice to the robot in this test

[alerts]
open = "00:00"
close = "23:59"

[alerts.queue_peak]
for_s = 1
clear_for_s = 2

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


def door(i: int, in_total: int, out_total: int) -> tuple[str, bytes]:
    body = {
        "id": f"dc-1:{i}",
        "ts": int(time.time() * 1000),
        "in_total": in_total,
        "out_total": out_total,
    }
    return "hall/h1/door/d1", json.dumps(body).encode()


async def wait_for(pred: Callable[[], bool], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(pred):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_crowd_reaches_the_supervisor_robot_and_resolves(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess], tmp_path: Path
):
    """25 people in the hall fire queue_peak to WeCom with the plan's actions; leaving resolves."""
    wecom = FakeWecom()
    async with serve(wecom.app()) as url:
        cfg = config(tmp_path, url)
        d = daemon_factory(broker.url, extra_env={"HALLWATCH_CONFIG": str(cfg)})
        await asyncio.to_thread(d.start)
        pub = [door(0, 100, 100), door(1, 125, 100)]
        await asyncio.to_thread(publish_all, "127.0.0.1", broker.port, pub)
        await wait_for(lambda: bool(wecom.accepted), 30, "the WeCom message")
        key, body = wecom.accepted[0].key, wecom.accepted[0].body
        assert key == "robot-supervisor"
        assert body["msgtype"] == "markdown"
        text = body["markdown"]["content"]
        assert "25" in text and "20" in text  # the figure now and the plan's threshold
        assert "绿色通道" in text  # the plan's green channel among the actions
        assert d.sample("hallwatch_alerts_firing", hall="h1", alert="queue_peak", level="1") == 1
        assert d.sample("hallwatch_notifications_total", channel="wecom", result="sent") >= 1

        await asyncio.to_thread(publish_all, "127.0.0.1", broker.port, [door(2, 125, 120)])
        await wait_for(
            lambda: any(
                "结束" in h.body["markdown"]["content"]
                for h in wecom.accepted
                if h.body.get("msgtype") == "markdown"
            ),
            30,
            "the resolved notice",
        )
        assert d.sample("hallwatch_alerts_firing", hall="h1", alert="queue_peak", level="1") is None
        assert await asyncio.to_thread(d.stop, signal.SIGTERM) == 0
