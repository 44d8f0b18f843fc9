"""A drill through real processes: `hallwatch drill run peak` into Mosquitto and the daemon, the
drill robot (a local WeCom-style server) acknowledging, then `hallwatch drill report`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT, DaemonProcess
from tests.daemon.staff.test_staff_e2e import config, markdowns, post, wait_for
from tests.harness.alert_fakes import FakeWecom, Sink, serve
from tests.harness.mosquitto import Mosquitto

DRILL = """
[alerts.queue_peak]
for_s = 5
clear_for_s = 3

[alerts.wecom.robots.drill]
key = "robot-drill"
[alerts.halls.drill-h1]
name = "演练大厅"
[alerts.halls.drill-h1.roles.supervisor]
wecom = ["drill"]
[alerts.halls.drill-h1.roles.director]
wecom = ["drill"]
"""


SUPERVISOR = "drill-supervisor-0123456789"
TOKENS = f"""
[api.tokens.supervisor]
token = "{SUPERVISOR}"
scopes = ["alerts:write"]
"""


def get(d: DaemonProcess, path: str, token: str) -> bytes:
    req = urllib.request.Request(d.base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return bytes(resp.read())


def hallwatch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hallwatch.daemon.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


async def test_a_peak_drill_reaches_only_the_drill_robot_and_is_reported(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    """A peak drill in hall drill-h1 fires a queue_peak alert marked 【演练】 on the drill
    robot only (the real supervisor's robot hears nothing); acknowledged through the API, it
    shows in the drill report with who acknowledged, and the emergency window nobody opened is
    reported as missed. A hall that is not a drill hall is refused."""
    wecom, sms = FakeWecom(), Sink()
    async with serve(wecom.app()) as wecom_url, serve(sms.app("/sms")) as sms_url:
        cfg = config(tmp_path, wecom_url, sms_url)
        text = cfg.read_text(encoding="utf-8")
        text = text.replace("[alerts.system_outage]", DRILL + "\n[alerts.system_outage]", 1)
        cfg.write_text(text + TOKENS, encoding="utf-8")
        d = daemon_factory(broker.url, extra_env={"HALLWATCH_CONFIG": str(cfg)})
        await asyncio.to_thread(d.start)
        env = {"PATH": "/usr/bin:/bin", "HALLWATCH_CONFIG": str(cfg)}
        refused = await asyncio.to_thread(hallwatch, "drill", "run", "peak", "--hall", "h1",
                                          "--broker", broker.url, env=env)  # fmt: skip
        assert refused.returncode == 2 and "drill" in refused.stderr
        run = asyncio.create_task(
            asyncio.to_thread(
                hallwatch,
                "drill",
                "run",
                "peak",
                "--hall",
                "drill-h1",
                "--minutes",
                "3",
                "--speed",
                "4",
                "--broker",
                broker.url,
                env=env,
            )
        )
        await wait_for(lambda: bool(markdowns(wecom, "robot-drill")), 60, "the drill alert")
        first = markdowns(wecom, "robot-drill")[0]
        assert first.startswith("**【演练】**") and "排队高峰" in first
        alerts = json.loads(await asyncio.to_thread(get, d, "/api/v1/alerts", SUPERVISOR))
        (alert,) = [a for a in alerts["alerts"] if a["hall"] == "drill-h1"]
        status = await asyncio.to_thread(
            post, d, f"/api/v1/alerts/{alert['alert_id']}/ack", {"by": "演练主管"}, SUPERVISOR
        )
        assert status == 200
        done = await run
        assert done.returncode == 0, done.stderr
        assert not markdowns(wecom, "robot-head")  # the real supervisor never heard of it
        assert not markdowns(wecom, "robot-director")
        assert await asyncio.to_thread(d.stop) == 0
        report = await asyncio.to_thread(
            hallwatch, "drill", "report", "--hall", "drill-h1", "--db", str(d.db), env=env
        )
        assert report.returncode == 0, report.stderr
        out = report.stdout
        print(out)  # the drill report, as staff see it
        assert "✓  高峰告警触发" in out, out
        assert "✓  确认告警：演练主管" in out, out
        assert "✗ 遗漏  增开应急窗口" in out, out
