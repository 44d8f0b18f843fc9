"""The pure rule engine: episodes, hysteresis, escalation, repeats, hours, devices, replay."""

from __future__ import annotations

import io
import json
from datetime import datetime
from zoneinfo import ZoneInfo

from hallwatch.alerts.replay import write_jsonl
from hallwatch.alerts.rules import RuleEngine, unreliable
from hallwatch.alerts.view import DeviceView, HallView, Transition
from hallwatch.daemon.config.alerts import RuleSettings
from hallwatch.daemon.config.alerts_reader import read_alerts
from hypothesis import given, settings
from hypothesis import strategies as st

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=TZ).timestamp()  # a Thursday, 10:00


def view(t: float, headcount: int = 5, wait: float | None = 60.0, **kw: object) -> HallView:
    return HallView(
        hall=str(kw.pop("hall", "h1")),
        now=T0 + t,
        headcount=headcount,
        est_wait_s_by_service={"withdrawal": wait, "loan": 30.0},
        waiting_by_service={"withdrawal": headcount, "loan": 1},
        windows_open=4,
        **kw,  # type: ignore[arg-type]
    )


def run(engine: RuleEngine, steps: list[tuple[float, int]], **kw: object) -> list[Transition]:
    out: list[Transition] = []
    for t, hc in steps:
        out += engine.evaluate(view(t, hc, **kw))
    return out


def engine() -> RuleEngine:
    return RuleEngine(RuleSettings())


def test_flapping_headcount_yields_one_alert() -> None:
    """A crowd, then a counter flapping between 14 and 22 for 20 min: one firing, one resolve."""
    e = engine()
    steps = [(t, 25) for t in range(0, 120, 5)]
    steps += [(t, 22 if (t // 30) % 2 == 0 else 14) for t in range(120, 1320, 5)]
    steps += [(t, 5) for t in range(1320, 1600, 5)]
    out = run(e, steps)
    assert [x.state for x in out if x.state != "repeat"] == ["firing", "resolved"]
    quick = run(engine(), [(t, 21 if (t // 10) % 2 == 0 else 17) for t in range(0, 1200, 5)])
    assert quick == []  # never 60 s in a row above 20: never fires


def test_blip_shorter_than_for_does_not_fire() -> None:
    """A counter blip above 20 for less than the 60 s `for` fires nothing."""
    e = engine()
    out = run(e, [(0, 5), (5, 25), (30, 25), (55, 25), (60, 10), (120, 10)])
    assert out == []


def test_fires_after_for_and_resolves_after_clear_for() -> None:
    """Fires 60 s after crossing; resolves 120 s after going below 15 people and 15 minutes."""
    e = engine()
    out = run(e, [(0, 22), (59, 22)])
    assert out == []
    (fired,) = run(e, [(60, 22)])
    assert (fired.state, fired.level, fired.recipients) == ("firing", 1, ("supervisor",))
    assert fired.figures.crossed[0].metric == "headcount"
    assert run(e, [(100, 16), (400, 14), (519, 14)]) == []  # 16 is in the band: no clear timer
    (res,) = run(e, [(520, 14)])
    assert res.state == "resolved" and res.reason == "cleared"
    assert res.peak is not None and res.peak.headcount == 22
    assert res.alert_id == fired.alert_id and "持续9分钟" in res.summary


def test_wait_alone_fires() -> None:
    """A 20-minute estimated wait for a normal ticket fires with 20 people nowhere near."""
    e = engine()
    out = [x for t in (0, 60) for x in e.evaluate(view(t, 3, wait=1250.0))]
    assert [x.state for x in out] == ["firing"]
    assert out[0].figures.crossed[0].service == "withdrawal"


def test_escalates_after_30_minutes_then_repeats_only_until_ack() -> None:
    """Level 2 (director added) after 30 min firing; repeats every 15 min until acknowledged."""
    e = engine()
    out = run(e, [(t, 25) for t in range(0, 60 * 70, 10)])
    states = [(x.state, round((x.at - T0) / 60)) for x in out]
    assert states[0] == ("firing", 1)
    assert ("repeat", 16) in states
    esc = [x for x in out if x.state == "escalated"]
    assert len(esc) == 1 and esc[0].level == 2
    assert esc[0].recipients == ("supervisor", "director")
    assert round((esc[0].at - T0) / 60) == 30  # 30 min after the episode began (t=0)
    e.ack(out[0].alert_id, "zhang", T0 + 4200)
    later = run(e, [(t, 25) for t in range(4200, 9000, 10)])
    assert later == []


def test_far_above_threshold_fires_at_level_2() -> None:
    """Forty people fire straight at level 2."""
    e = engine()
    out = run(e, [(0, 41), (60, 41)])
    assert [(x.state, x.level) for x in out] == [("firing", 2)]


def test_a_peak_first_seen_firing_after_30_minutes_fires_at_level_2_once() -> None:
    """A peak whose condition began more than 30 minutes before the tick that finds it firing
    (ticks far apart: a busy or restarted daemon) fires at level 2, and evaluating the same
    instant again changes nothing (it escalated on the next look, two messages for one)."""
    e = engine()
    out = run(e, [(0, 25), (1900, 25), (1900, 25), (1902, 25)])
    assert [(x.state, x.level) for x in out] == [("firing", 2)]


def test_no_peak_alert_outside_opening_hours_or_on_holidays() -> None:
    """At 08:00, after 17:00 and on a non-working day a crowd fires nothing."""
    e = engine()
    early = [e.evaluate(view(t - 7200, 30)) for t in (0, 100, 200)]
    late = [e.evaluate(view(t + 7.5 * 3600, 30)) for t in (0, 100, 200)]
    holiday = [e.evaluate(view(t, 30, is_working_day=False)) for t in (0, 100, 200)]
    assert early == late == holiday == [[], [], []]


def test_episode_firing_at_closing_resolves_as_closed() -> None:
    """An episode still firing at 17:00 resolves with reason "closed"; the next day is new."""
    e = engine()
    run(e, [(6.9 * 3600, 30), (6.9 * 3600 + 60, 30)])
    out = run(e, [(7 * 3600 + 1, 30)])
    assert [(x.state, x.reason) for x in out] == [("resolved", "closed")]
    assert "营业时间结束" in out[0].summary


def test_device_offline_after_120_s_and_unreliable_at_once() -> None:
    """A door counter down 119 s fires nothing yet marks headcount unreliable; at 120 s it fires."""
    e = engine()
    dev = (DeviceView("door-1", "door_counter", up=False, since=T0),)
    v = view(119, devices=dev)
    assert e.evaluate(v) == []
    assert unreliable(v) == ("headcount",)
    (t,) = e.evaluate(view(120, devices=dev))
    assert (t.alert, t.subject, t.state) == ("device_offline", "door-1", "firing")
    up = (DeviceView("door-1", "door_counter", up=True, since=T0 + 200),)
    assert e.evaluate(view(210, devices=up)) == []  # up only 10 s: clear_for is 30 s
    (r,) = e.evaluate(view(230, devices=up))
    assert r.state == "resolved"


def test_system_outage_fires_at_once_and_escalates_at_half_an_hour() -> None:
    """A system down fires at once to the information centre and escalates at the half hour."""
    e = engine()
    systems = {"core": ("down", T0)}
    out = [x for t in range(0, 1900, 30) for x in e.evaluate(view(t, systems=systems))]
    main = [x for x in out if x.state != "repeat"]
    assert [(x.state, x.level, x.at - T0) for x in main] == [
        ("firing", 1, 0),
        ("escalated", 2, 1800),
    ]
    assert main[0].recipients == ("info_centre", "supervisor")
    assert "director" in main[1].recipients
    (r,) = e.evaluate(view(1950, systems={"core": ("up", T0 + 1950)}))
    assert (r.alert, r.state) == ("system_outage", "resolved")
    assert "32分钟" in r.summary  # the outage's duration


def test_peak_during_an_outage_is_marked_as_caused_by_it() -> None:
    """A crowd while the system is down says so instead of advising more windows."""
    from hallwatch.alerts.messages import Names, sms_text, wecom_markdown

    e = engine()
    down = {"core": ("down", T0)}
    out = run(e, [(0, 25), (60, 25)], systems=down)
    (peak,) = [x for x in out if x.alert == "queue_peak"]
    assert peak.figures.caused_by_outage == ("core",)
    assert "信息系统故障导致" in peak.summary
    text = wecom_markdown(peak, Names("大厅"))
    assert "增设应急窗口" not in text and "回拨登记" in text
    assert "建议增设" not in sms_text(peak, Names("大厅"))
    plain = [x for x in run(engine(), [(0, 25), (60, 25)]) if x.alert == "queue_peak"]
    assert plain[0].figures.caused_by_outage == ()
    assert "增设应急窗口" in wecom_markdown(plain[0], Names("大厅"))


def test_snapshot_restore_does_not_refire() -> None:
    """A restarted engine with the saved episodes continues the episode instead of re-firing."""
    e = engine()
    run(e, [(0, 25), (60, 25)])
    e2 = engine()
    e2.restore(e.snapshot())
    assert run(e2, [(70, 25), (80, 25)]) == []
    assert e2.firing()[0].alert_id == e.firing()[0].alert_id


def test_per_hall_thresholds_from_config() -> None:
    """A hall's own headcount threshold applies to it and not to others."""
    s = read_alerts(
        {"halls": {"small": {"queue_peak": {"headcount": 10, "clear_headcount": 8}}}}, {}
    )
    e = RuleEngine(s.rules)
    small = [x for t in (0, 60) for x in e.evaluate(view(t, 12, hall="small"))]
    big = [x for t in (0, 60) for x in e.evaluate(view(t, 12, hall="big"))]
    assert [x.state for x in small] == ["firing"] and big == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=200))
def test_states_alternate_firing_and_resolved(counts: list[int]) -> None:
    """Whatever the headcounts, an episode fires before it resolves and never twice at once."""
    e = engine()
    out = run(e, [(i * 15, c) for i, c in enumerate(counts)])
    live = False
    for x in out:
        if x.state == "firing":
            assert not live
            live = True
        elif x.state == "resolved":
            assert live
            live = False
        else:
            assert live


def test_replay_writes_one_line_per_transition() -> None:
    """The replay output has firing/escalated/resolved lines with the documented fields."""
    views = [view(t, 25 if t < 600 else 5) for t in range(0, 1200, 10)]
    buf = io.StringIO()
    n = write_jsonl(views, RuleSettings(), buf)
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert n == len(lines) == 2
    assert [x["state"] for x in lines] == ["firing", "resolved"]
    assert set(lines[0]) == {"at", "hall", "alert", "state", "level", "summary"}
    assert lines[0]["at"].startswith("2026-11-26T10:01:00+08:00")
