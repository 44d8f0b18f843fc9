"""Chinese alert text: the plan's actions with the estimator's numbers, within phone limits."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

from hallwatch.alerts.messages import Names, sms_text, wecom_markdown
from hallwatch.alerts.rules import RuleEngine
from hallwatch.alerts.view import HallView, Transition
from hallwatch.daemon.config.alerts import RuleSettings
from hallwatch.daemon.config.alerts_reader import read_alerts

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 26, 11, 30, tzinfo=TZ).timestamp()


def fired(**kw: object) -> Transition:
    e = RuleEngine(RuleSettings())
    base: dict[str, object] = {
        "hall": "h1",
        "headcount": 26,
        "est_wait_s_by_service": {"withdrawal": 1500.0, "loan": 300.0},
        "waiting_by_service": {"withdrawal": 30, "loan": 4},
        "windows_open": 5,
        "extra_windows_by_service": {"withdrawal": 2, "loan": 0},
        "closing_overrun_s": 2100.0,
    }
    base.update(kw)
    out = [t for s in (0, 60) for t in e.evaluate(HallView(now=T0 + s, **base))]  # type: ignore[arg-type]
    assert len(out) == 1
    return out[0]


NAMES = Names("市中心服务大厅", {"withdrawal": "提取", "loan": "贷款"})


def test_markdown_names_what_crossed_and_the_plan_actions_with_numbers() -> None:
    """The message says 26 people and 25 minutes crossed, 2 emergency windows for 提取,
    green channel and appointments, off-peak signs, extended hours (35 min) and midday shifts."""
    text = wecom_markdown(fired(), NAMES)
    assert "厅内26人(≥20)" in text and "提取预计等待25分钟(≥20)" in text
    assert "增设应急窗口 **2** 个：提取2个" in text
    assert "绿色通道" in text and "预约服务" in text and "错峰" in text
    assert "闭厅后约 **35** 分钟" in text and "午间轮班" in text
    assert "贷款0个" not in text


def test_no_extended_hours_when_the_queue_clears_by_closing() -> None:
    """Without a closing overrun the message does not ask for extended hours."""
    assert "延长对外服务时间" not in wecom_markdown(fired(closing_overrun_s=0.0), NAMES)


def test_markdown_fits_4096_bytes_with_hundreds_of_services() -> None:
    """Even with 300 services needing windows the markdown stays within WeCom's 4,096 bytes."""
    many = {f"业务{i:03d}": 1 for i in range(300)}
    text = wecom_markdown(fired(extra_windows_by_service=many), NAMES)
    assert len(text.encode()) <= 4096 and text.endswith("…")


def test_sms_is_one_segment() -> None:
    """The SMS text is at most 70 characters and names the hall and the crowd."""
    text = sms_text(fired(), NAMES)
    assert len(text) <= 70 and "排队高峰" in text and "26人" in text


def test_sms_keeps_the_action_and_the_number_when_the_summary_is_long() -> None:
    """A summary too long for one segment is what gets cut: the first action (how many windows
    to add) and the alert's number always reach the phone."""
    t = fired()
    long = dataclasses.replace(t, summary=t.summary + "，" + "提取、贷款、转移、缴存" * 8)
    text = sms_text(long, NAMES)
    number = t.alert_id.rsplit(":", 1)[-1][-4:]
    assert len(text) <= 70 and "…" in text
    assert text.endswith(f"，建议增设2个窗口。编号{number}")


def test_unreliable_estimates_are_flagged() -> None:
    """With the door counter down the message warns that the headcount may be wrong."""
    from hallwatch.alerts.view import DeviceView

    t = fired(devices=(DeviceView("d1", "door_counter", up=False, since=T0),))
    assert "厅内人数估算可能不准" in wecom_markdown(t, NAMES)


def test_service_display_names_come_from_config() -> None:
    """`alerts.service_names` maps service codes to the names shown."""
    s = read_alerts({"service_names": {"withdrawal": "公积金提取"}}, {})
    assert s.service_names["withdrawal"] == "公积金提取"
