"""The peak procedure's rules on hall views (issue 15): the endured wait as a trigger, a service
nobody serves as its own alert, a relapse that continues the cleared episode, bounded advice."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hallwatch.alerts.messages import Names, sms_text, wecom_markdown
from hallwatch.alerts.rules import RuleEngine
from hallwatch.alerts.view import HallView, Transition
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config import settings as config
from hallwatch.daemon.config.alerts import RuleSettings

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 26, 11, 30, tzinfo=TZ).timestamp()  # a Thursday, 11:30
NAMES = Names("市中心服务大厅", {"loan": "贷款", "withdrawal": "提取"})
MIN = 60.0


def lunch(t: float, **kw: object) -> HallView:
    """The paused loan window: loan customers waiting since 11:30, no forecast for them."""
    base: dict[str, object] = {
        "hall": "h1",
        "now": T0 + t,
        "headcount": 12,
        "est_wait_s_by_service": {"withdrawal": 300.0, "loan": None},
        "waiting_by_service": {"withdrawal": 2, "loan": 10},
        "endured_s_by_service": {"withdrawal": 200.0, "loan": t},
        "uncovered_since": {"loan": T0},
        "windows_open": 3,
    }
    base.update(kw)
    return HallView(**base)  # type: ignore[arg-type]


def run(e: RuleEngine, views: list[HallView]) -> list[Transition]:
    return [t for v in views for t in e.evaluate(v)]


def by(out: list[Transition], alert: str) -> list[Transition]:
    return [t for t in out if t.alert == alert and t.state != "repeat"]


def test_endured_wait_fires_the_peak_when_no_forecast_exists() -> None:
    """With no open loan window (forecast None) the peak fires 60 s after someone has waited
    20 minutes, and the message says it is the endured wait, with the figure."""
    e = RuleEngine(RuleSettings())
    out = by(run(e, [lunch(t * MIN) for t in range(0, 30)]), "queue_peak")
    (fired,) = out
    assert fired.state == "firing" and fired.at == T0 + 21 * MIN
    assert [(c.metric, c.service) for c in fired.figures.crossed] == [("endured", "loan")]
    text = wecom_markdown(fired, NAMES)
    assert "贷款已有人等待21分钟(≥20)" in text
    assert "最长已等待21分钟(贷款)" in text and "最长预计等待5分钟(提取)" in text
    assert "已有人等待" in fired.summary


def test_forecast_crossing_says_forecast() -> None:
    """A forecast over 20 minutes with short endured waits is quoted as the forecast."""
    e = RuleEngine(RuleSettings())
    views = [
        lunch(t, est_wait_s_by_service={"withdrawal": 1500.0}, endured_s_by_service={})
        for t in (0, 60)
    ]
    (fired,) = by(run(e, views), "queue_peak")
    assert [c.metric for c in fired.figures.crossed] == ["wait"]
    assert "提取预计等待25分钟(≥20)" in wecom_markdown(fired, NAMES)


def test_endured_wait_keeps_the_peak_from_clearing() -> None:
    """While someone still waiting has waited over 15 minutes the peak does not clear; once
    they are called it does."""
    e = RuleEngine(RuleSettings())
    run(e, [lunch(t * MIN) for t in range(0, 25)])
    still = run(e, [lunch(t * MIN, headcount=2) for t in range(25, 40)])
    assert not [t for t in still if t.alert == "queue_peak" and t.state == "resolved"]
    gone = {"withdrawal": 0.0}
    done = by(
        run(e, [lunch(t * MIN, endured_s_by_service=gone) for t in range(40, 44)]), "queue_peak"
    )
    assert [t.state for t in done] == ["resolved"]
    assert done[0].peak is not None and done[0].peak.max_endured_s == 39 * MIN


def test_uncovered_service_is_its_own_alert_with_its_own_action() -> None:
    """Loan customers waiting with no open loan window: service_uncovered fires at 10 minutes
    to the supervisor, asks to open a loan window (午间轮班), and resolves when one opens."""
    e = RuleEngine(RuleSettings())
    out = by(run(e, [lunch(t * MIN) for t in range(0, 12)]), "service_uncovered")
    (fired,) = out
    assert (fired.state, fired.subject, fired.at) == ("firing", "loan", T0 + 10 * MIN)
    assert fired.recipients == ("supervisor",)
    text = wecom_markdown(fired, NAMES)
    assert "【业务无窗口告警】" in text and "**贷款** 有10人等候，已10分钟没有开放窗口办理" in text
    assert "立即为 **贷款** 开放窗口" in text and "午间轮班" in text
    assert "请立即为贷款开窗口" in sms_text(fired, NAMES) and len(sms_text(fired, NAMES)) <= 70
    (res,) = by(run(e, [lunch(12 * MIN, uncovered_since={})]), "service_uncovered")
    assert res.state == "resolved" and res.alert_id == fired.alert_id
    assert "已有窗口办理" in res.summary


def test_uncovered_resolves_when_nobody_waits_and_escalates_when_long() -> None:
    """Uncovered for 30 minutes escalates to the director's office; nobody waiting resolves it."""
    e = RuleEngine(RuleSettings())
    out = by(run(e, [lunch(t * MIN) for t in range(0, 31)]), "service_uncovered")
    assert [(t.state, t.level) for t in out] == [("firing", 1), ("escalated", 2)]
    assert out[1].recipients == ("supervisor", "director")
    nobody = lunch(31 * MIN, uncovered_since={}, waiting_by_service={"withdrawal": 2})
    (res,) = by(run(e, [nobody]), "service_uncovered")
    assert res.state == "resolved" and "已无人等候" in res.summary


def test_uncovered_only_in_opening_hours() -> None:
    """A queue left uncovered after closing time (17:00) alerts nobody."""
    e = RuleEngine(RuleSettings())
    evening = T0 + 6 * 3600  # 17:30
    views = [lunch(6 * 3600 + t * MIN, uncovered_since={"loan": evening}) for t in range(0, 20)]
    assert by(run(e, views), "service_uncovered") == []


def crowd(t: float, n: int) -> HallView:
    return HallView(hall="h1", now=T0 + t, headcount=n)


def test_relapse_within_30_minutes_continues_the_episode() -> None:
    """A peak that cleared and comes back 15 minutes later reopens the same alert (same id, one
    notice to the supervisor, not the director again); 40 minutes later it is a new alert."""
    e = RuleEngine(RuleSettings())
    steps = [(t, 45) for t in range(0, 181, 30)]  # 45 people: level 2 at once
    steps += [(t, 5) for t in range(210, 400, 30)]  # cleared
    out = [t for s, n in steps for t in e.evaluate(crowd(s, n))]
    assert [(t.state, t.level) for t in out] == [("firing", 2), ("resolved", 2)]
    first = out[0].alert_id
    again = [t for s in range(1290, 1400, 30) for t in e.evaluate(crowd(s, 25))]
    assert [t.state for t in again] == ["relapsed"]
    assert again[0].alert_id == first and again[0].recipients == ("supervisor",)
    assert "再次告警" in again[0].summary
    assert "再次出现" in wecom_markdown(again[0], NAMES)
    # the snapshot keeps it: a restart then a clear and a late crossing give a new alert
    e2 = RuleEngine(RuleSettings())
    e2.restore(e.snapshot())
    res = [t for s in range(1410, 1600, 30) for t in e2.evaluate(crowd(s, 5))]
    assert [t.state for t in res] == ["resolved"] and res[0].alert_id == first
    late = [t for s in range(1590 + 1800, 1590 + 1900, 30) for t in e2.evaluate(crowd(s, 25))]
    assert [t.state for t in late] == ["firing"] and late[0].alert_id != first


def test_cleared_episode_is_not_firing_and_not_acknowledgeable() -> None:
    """A cleared peak held for a relapse is not listed as firing and cannot be acknowledged."""
    e = RuleEngine(RuleSettings())
    out = [t for s, n in ((0, 25), (60, 25), (90, 5), (220, 5)) for t in e.evaluate(crowd(s, n))]
    assert [t.state for t in out] == ["firing", "resolved"]
    assert e.firing() == [] and e.ack(out[0].alert_id, "张三", T0 + 300) is None


def test_relapse_can_be_switched_off() -> None:
    """relapse_s = 0 restores one alert per crossing."""
    s = RuleSettings()
    from dataclasses import replace

    peak = replace(s.default.queue_peak, relapse_s=0.0)
    e = RuleEngine(replace(s, default=replace(s.default, queue_peak=peak)))
    steps = ((0, 25), (60, 25), (90, 5), (220, 5), (400, 25), (460, 25))
    out = [t for s_, n in steps for t in e.evaluate(crowd(s_, n))]
    assert [t.state for t in out] == ["firing", "resolved", "firing"]


def test_advice_messages_bounded_and_extended_hours_when_windows_cannot_clear() -> None:
    """No spare window: the message says so; spare windows that cannot clear the queue by
    closing: it says even all of them are not enough and asks for extended hours and
    appointments."""
    e = RuleEngine(RuleSettings())
    views = [crowd(t, 25) for t in (0, 60)]
    views[-1] = HallView(hall="h1", now=T0 + 60, headcount=25, spare_windows=0)
    (t,) = run(e, views)
    assert "窗口已全部开放，无窗口可增设" in wecom_markdown(t, NAMES)
    e = RuleEngine(RuleSettings())
    last = HallView(
        hall="h1",
        now=T0 + 60,
        headcount=25,
        spare_windows=1,
        extra_windows_by_service={"withdrawal": 1},
        all_open_overrun_s=1800.0,
        closing_overrun_s=3000.0,
    )
    (t,) = run(e, [crowd(0, 25), last])
    text = wecom_markdown(t, NAMES)
    assert "增设应急窗口 **1** 个：提取1个" in text
    assert "即使开放全部1个空闲窗口，闭厅后仍需约 **30** 分钟" in text and "预约服务" in text


def test_service_uncovered_rule_is_configurable(tmp_path: Path) -> None:
    """[alerts.service_uncovered] and a hall's own table set the rule; a role may take only
    service_uncovered; an unknown key stops start-up naming it."""
    path = tmp_path / "h.toml"
    path.write_text(
        "[alerts.service_uncovered]\nafter_s = 300\n"
        "[alerts.halls.h2.service_uncovered]\nescalate_after_s = 900\n"
        '[alerts.roles.lunch]\nalerts = ["service_uncovered"]\n',
        encoding="utf-8",
    )
    s = config.load(path, {}).alerts
    assert s.rules.default.service_uncovered.after_s == 300.0
    h2 = s.rules.for_hall("h2").service_uncovered
    assert (h2.after_s, h2.escalate_after_s) == (300.0, 900.0)
    assert s.roles["lunch"].alerts == ("service_uncovered",)
    path.write_text("[alerts.service_uncovered]\nafter_minutes = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="service_uncovered"):
        config.load(path, {})
