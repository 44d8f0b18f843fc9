"""Drill halls (alerts.drill): every notification marked 【演练】, only the hall's own roles,
nothing to Alertmanager; an unconfigured drill hall reaches nobody."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hallwatch.alerts import drill
from hallwatch.alerts.messages import SMS_MAX
from hallwatch.alerts.outbox import NewNotification, Outbox
from hallwatch.alerts.service import Alerts
from hallwatch.alerts.view import HallView
from hallwatch.daemon.config.alerts_reader import read_alerts

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
ROLES = {
    "supervisor": {"wecom": ["head"], "sms": ["13800000001"]},
    "director": {"wecom": ["director"]},
}
SETTINGS = read_alerts(
    {
        "wecom": {
            "robots": {"head": {"key": "k1"}, "director": {"key": "k2"}, "drill": {"key": "k3"}}
        },
        "roles": ROLES,
        "sms": {"provider": "generic", "endpoint": "http://127.0.0.1:9/sms"},
        "alertmanager": {"url": "http://127.0.0.1:9/api/v2/alerts"},
        "halls": {
            "drill-h1": {
                "name": "演练大厅",
                "roles": {"supervisor": {"wecom": ["drill"], "sms": ["13900000009"]}},
            }
        },
    },
    {},
)


async def peak_notes(tmp_path: Path, hall: str) -> list[NewNotification]:
    """The notifications of a peak that fires in `hall` (60 s over 20 people)."""
    async with Outbox(tmp_path / f"{hall}.db") as outbox:
        alerts = Alerts(SETTINGS, outbox, clock=lambda: T0)
        await alerts.start()
        notes: list[NewNotification] = []
        for dt in (0, 30, 61):
            for t in await alerts.evaluate([HallView(hall=hall, now=T0 + dt, headcount=30)]):
                notes += alerts.route(t)
        return notes


async def test_a_drill_peak_reaches_only_the_drill_roster_marked(tmp_path: Path) -> None:
    """A peak in drill-h1 goes to the drill robot and phone only, every message marked
    【演练】, with no Alertmanager push; the same peak in h1 reaches the real roles and
    Alertmanager, unmarked."""
    real = await peak_notes(tmp_path, "h1")
    assert {n.target for n in real} >= {"head", "13800000001", ""}
    assert "alertmanager" in {n.channel for n in real}
    assert not any(drill.MARK in str(n.payload) for n in real)
    notes = await peak_notes(tmp_path, "drill-h1")
    assert notes and {n.target for n in notes} == {"drill", "13900000009"}
    for n in notes:
        body = n.payload.get("content") or n.payload.get("text")
        assert str(body).startswith(("**【演练】**", "【演练】")), n
    sms = next(n for n in notes if n.channel == "sms")
    assert len(sms.payload["text"]) <= SMS_MAX


async def test_an_unconfigured_drill_hall_reaches_nobody(tmp_path: Path) -> None:
    """A drill in a hall with no roles of its own sends nothing, rather than the real roles."""
    assert await peak_notes(tmp_path, "drill-x") == []


def test_a_long_sms_keeps_its_head_and_its_end() -> None:
    """【演练】 plus a full segment is cut in the middle: the alert's name and the number stay."""
    text = "【排队高峰告警】" + "中" * 50 + "，编号 h1:queue_peak:1796001040"
    out = drill.sms(text)
    assert len(out) <= SMS_MAX
    assert out.startswith("【演练】【排队高峰告警】") and out.endswith("1796001040")


async def test_notices_of_a_drill_hall_are_marked_too(tmp_path: Path) -> None:
    """A complaint notice for a drill hall is marked and routed like its alerts."""
    async with Outbox(tmp_path / "n.db") as outbox:
        alerts = Alerts(SETTINGS, outbox, clock=lambda: T0)
        notes = alerts.notice(
            kind="complaint",
            key="complaint/drill-h1/D1/serious",
            hall="drill-h1",
            roles=["supervisor", "director"],
            title="【严重投诉】演练大厅",
            lines=["> 演练"],
            sms="【严重投诉】演练大厅",
        )
    assert {n.target for n in notes} == {"drill", "13900000009"}
    assert all(drill.MARK in str(n.payload) for n in notes)
