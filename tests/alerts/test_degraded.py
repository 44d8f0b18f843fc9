"""A degraded business system (plan 4.3, 信息网络不畅) alerts the information centre: the rule on
hall views, and a real daemon fed through Mosquitto with a WeCom-style robot."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hallwatch.alerts.messages import Names, sms_text, wecom_markdown
from hallwatch.alerts.rules import RuleEngine
from hallwatch.alerts.view import HallView, Transition
from hallwatch.daemon.config.alerts import RuleSettings
from hallwatch.sensors.publish import publish_all

from tests.conftest import DaemonProcess
from tests.daemon.staff.test_staff_e2e import config, markdowns, msg, wait_for
from tests.harness.alert_fakes import FakeWecom, Sink, serve
from tests.harness.mosquitto import Mosquitto

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=TZ).timestamp()
NAMES = Names("市中心服务大厅", {})


def view(t: float, state: str, since: float) -> HallView:
    return HallView(hall="h1", now=T0 + t, headcount=5, systems={"core": (state, T0 + since)})


def test_degraded_alerts_the_information_centre_and_yields_to_an_outage() -> None:
    """Degraded for a minute fires system_degraded to the information centre and the
    supervisor with the plan's actions; when the system goes down the outage takes over (the
    slow alert resolves), and when it is back both are resolved."""
    e = RuleEngine(RuleSettings())
    out: list[Transition] = []
    for t in range(0, 120, 10):
        out += e.evaluate(view(t, "degraded", 0))
    (fired,) = [t for t in out if t.alert == "system_degraded"]
    assert fired.state == "firing" and fired.at == T0 + 60
    assert fired.recipients == ("info_centre", "supervisor")
    text = wecom_markdown(fired, NAMES)
    assert "信息系统运行缓慢" in text and "信息中心" in text and "先收件后补录" in text
    assert "信息中心" in sms_text(fired, NAMES)
    down = e.evaluate(view(200, "down", 200))
    assert {(t.alert, t.state) for t in down} == {("system_outage", "firing")}
    later = [t for s in range(210, 300, 10) for t in e.evaluate(view(s, "down", 200))]
    assert ("system_degraded", "resolved") in {(t.alert, t.state) for t in later}
    back = [t for s in range(300, 420, 10) for t in e.evaluate(view(s, "up", 300))]
    assert ("system_outage", "resolved") in {(t.alert, t.state) for t in back}
    assert not [x for x in e.firing() if x.hall == "h1"]


async def test_a_degraded_system_reaches_the_information_centre_robot(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    """Through Mosquitto and the daemon: `degraded` on hall/h1/system/core brings the
    information centre's robot a 信息系统运行缓慢 message; `up` brings its resolution."""
    wecom, sms = FakeWecom(), Sink()
    async with serve(wecom.app()) as wecom_url, serve(sms.app("/sms")) as sms_url:
        cfg = config(tmp_path, wecom_url, sms_url)
        text = cfg.read_text(encoding="utf-8")
        cfg.write_text(text + "\n[alerts.system_degraded]\nafter_s = 1\nclear_for_s = 1\n")
        d = daemon_factory(broker.url, extra_env={"HALLWATCH_CONFIG": str(cfg)})
        await asyncio.to_thread(d.start)
        pub = lambda *m: asyncio.to_thread(publish_all, "127.0.0.1", broker.port, list(m))  # noqa: E731
        await pub(msg("hall/h1/system/core", state="degraded", detail="网络丢包"))
        await wait_for(lambda: bool(markdowns(wecom, "robot-info")), 30, "the degraded alert")
        first = markdowns(wecom, "robot-info")[0]
        assert "信息系统运行缓慢" in first and "网络丢包" not in first
        assert not markdowns(wecom, "robot-director")
        await pub(msg("hall/h1/system/core", state="up"))
        await wait_for(
            lambda: any("已恢复" in t or "已结束" in t for t in markdowns(wecom, "robot-info")),
            30,
            "the resolution",
        )
        assert await asyncio.to_thread(d.stop) == 0
