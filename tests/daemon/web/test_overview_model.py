"""The centre overview's pure model (daemon/web/overview_model.py): ranking by pressure, the wait
already endured, services without a window, advice, alerts with their acknowledgement, and the
registers' figures."""

from __future__ import annotations

from dataclasses import replace

from hallwatch.alerts.rules import Episode
from hallwatch.alerts.view import HallView
from hallwatch.daemon.config.alerts import HallRules, PeakRule, RuleSettings
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.pipeline.views import hall_view
from hallwatch.daemon.staff.complaints import HallCounts
from hallwatch.daemon.staff.outage import OutageStatus
from hallwatch.daemon.web.overview_model import (
    endured_by_service,
    overview_model,
    uncovered_services,
)

from tests.factories import at, device_ev, door_ev, issued, ticket_ev, window_ev

T0 = at("2026-11-26T09:00")
NOW = T0 + 1800  # 09:30
RULES = RuleSettings(halls={"h1": HallRules(name="市中心大厅")})
CAL = WorkCalendar()


def views(state: HallsState, now: float = NOW) -> dict[str, HallView]:
    return {
        h: hall_view(state, h, now, advice=None, heartbeat_timeout_s=90.0, calendar=CAL)
        for h in state.halls
    }


def people(state: HallsState, hall: str, n: int) -> None:
    state.apply(door_ev("d1", 0, 0, T0, hall=hall))
    state.apply(door_ev("d1", n, 0, T0 + 60, hall=hall))


def test_endured_wait_is_the_oldest_ticket_still_waiting() -> None:
    """The longest endured wait per service is `now` minus when the oldest ticket still waiting
    entered the queue: a called ticket no longer counts, a transfer starts a new wait."""
    s = HallsState()
    for ev in (
        window_ev("w1", "open", T0, services=("提取", "贷款")),
        issued("A1", T0 + 10, service="提取"),  # called: no longer waiting
        issued("A2", T0 + 120, service="提取"),
        issued("A3", T0 + 600, service="提取"),
        issued("B1", T0 + 30, service="贷款"),
        ticket_ev("called", "A1", T0 + 100, window="w1"),
        ticket_ev("called", "B1", T0 + 200, window="w1"),
        ticket_ev("transferred", "B1", T0 + 900, service="贷款"),
    ):
        s.apply(ev)
    day = s.day_at(s.halls["h1"], NOW)
    assert endured_by_service(day, NOW) == {"提取": 1680.0, "贷款": 900.0}
    m = overview_model(s, views(s), (), NOW, rules=RULES)
    assert m["halls"][0]["longest_endured"] == {
        "service": "提取",
        "service_name": "提取",
        "wait_s": 1680,
        "wait_min": 28,
    }
    # 28 minutes endured against the 20-minute trigger, though only 3 customers wait.
    assert m["halls"][0]["pressure"] == 1.4 and m["halls"][0]["pressure_from"] == "endured"


def test_service_with_customers_waiting_and_no_open_window_is_uncovered() -> None:
    """A service whose only window is paused, with customers waiting, is listed with its queue
    and the wait its customers have endured, and puts the quiet hall at peak pressure."""
    s = HallsState()
    for ev in (
        window_ev("w1", "open", T0, services=("提取",)),
        window_ev("w2", "paused", T0 + 60, services=("贷款",)),
        issued("A1", NOW - 120, service="提取"),
        issued("C1", T0 + 1500, service="贷款"),
        issued("C2", T0 + 1600, service="贷款"),
    ):
        s.apply(ev)
    assert uncovered_services(s.halls["h1"], s.day_at(s.halls["h1"], NOW)) == {"贷款": 2}
    row = overview_model(s, views(s), (), NOW, rules=RULES)["halls"][0]
    assert row["uncovered"] == [
        {"service": "贷款", "service_name": "贷款", "waiting": 2, "endured_min": 5}
    ]
    assert row["level"] == "peak" and row["pressure_from"] == "uncovered"
    assert row["name"] == "市中心大厅"
    s.apply(window_ev("w2", "open", NOW - 10, services=("贷款",)))
    row = overview_model(s, views(s), (), NOW, rules=RULES)["halls"][0]
    assert row["uncovered"] == [] and row["level"] == "normal"


def test_halls_ranked_by_pressure_against_their_own_trigger() -> None:
    """Halls are ranked by their worst figure over their own trigger (people, endured or
    forecast wait); on equal pressure the hall with more unacknowledged alerts comes first."""
    rules = RuleSettings(
        halls={"small": HallRules(name="小厅", queue_peak=PeakRule(headcount=10, wait_s=1200.0))}
    )
    s = HallsState()
    people(s, "crowded", 25)  # 25/20 = 1.25
    people(s, "small", 15)  # 15/10 = 1.5
    people(s, "quiet", 4)  # 0.2
    people(s, "forecast", 2)
    people(s, "tied", 5)  # 0.25, like "quiet2"
    people(s, "quiet2", 5)
    vs = views(s)
    vs["forecast"] = replace(vs["forecast"], est_wait_s_by_service={"提取": 1560.0, "x": None})
    ep = Episode("tied", "device_offline", "tm1", "firing", NOW - 300, level=1)
    m = overview_model(s, vs, [ep], NOW, rules=rules)
    order = [(r["hall"], r["rank"], r["pressure"]) for r in m["halls"]]
    assert order == [
        ("small", 1, 1.5),
        ("forecast", 2, 1.3),
        ("crowded", 3, 1.25),
        ("tied", 4, 0.25),
        ("quiet2", 5, 0.25),
        ("quiet", 6, 0.2),
    ]
    assert m["halls"][1]["longest_forecast"]["wait_min"] == 26
    assert m["halls"][0]["headcount_mark"] == 10 and m["halls"][2]["headcount_mark"] == 20
    assert [r["level"] for r in m["halls"]][:3] == ["peak"] * 3
    assert m["totals"]["peak"] == 3 and m["totals"]["headcount"] == 56


def test_firing_alerts_shown_with_who_acknowledged_and_when() -> None:
    """A hall's firing alerts are listed with who acknowledged them and at what local time (or
    as unacknowledged); pending episodes and other halls' alerts are not shown."""
    s = HallsState()
    people(s, "h1", 3)
    people(s, "h2", 3)
    acked = Episode(
        "h1", "queue_peak", "", "firing", at("2026-11-26T09:05"), level=2, summary="排队高峰"
    )
    acked.acked_by, acked.acked_at = "张主任", at("2026-11-26T09:12")
    open_ = Episode("h1", "system_outage", "core", "firing", at("2026-11-26T09:20"), level=1)
    pending = Episode("h1", "device_offline", "tm1", "pending", NOW - 30)
    other = Episode("h2", "device_offline", "tm9", "firing", NOW - 60, level=1)
    m = overview_model(s, views(s), [acked, open_, pending, other], NOW, rules=RULES)
    h1 = next(r for r in m["halls"] if r["hall"] == "h1")
    shown = [
        (a["alert_text"], a["level_text"], a["since_text"], a["acked_by"], a["acked_text"])
        for a in h1["alerts"]
    ]
    assert shown == [
        ("排队高峰", "二级", "09:05", "张主任", "09:12"),
        ("信息系统故障", "一级", "09:20", None, None),
    ]
    assert h1["alerts_unacked"] == 1 and m["totals"]["alerts"] == 3
    assert m["totals"]["alerts_unacked"] == 2


def test_advice_registers_and_devices_per_hall() -> None:
    """The advice lists the extra windows per service, most first; the outage, call-backs,
    complaints and silent devices are the hall's own; a hall known only from a register is
    listed too."""
    s = HallsState()
    people(s, "h1", 8)
    s.apply(device_ev("tm1", "offline", T0 + 100, hall="h1"))
    vs = views(s)
    vs["h1"] = replace(
        vs["h1"], extra_windows_by_service={"提取": 1, "贷款": 3, "x": 0}, closing_overrun_s=1790
    )
    outage = OutageStatus(("core",), at("2026-11-26T09:10"), True, at("2026-11-26T10:30"))
    m = overview_model(
        s,
        vs,
        (),
        NOW,
        rules=RULES,
        service_names={"贷款": "贷款业务"},
        complaints={"h1": HallCounts(2, 1, 1), "h7": HallCounts(1, 0, 1)},
        callbacks={"h1": (3, 1)},
        outages={"h1": outage},
    )
    h1 = next(r for r in m["halls"] if r["hall"] == "h1")
    assert h1["advice"] == [
        {"service": "贷款", "service_name": "贷款业务", "extra_windows": 3},
        {"service": "提取", "service_name": "提取", "extra_windows": 1},
    ]
    assert h1["closing_overrun_min"] == 30
    assert h1["outage"] is not None and h1["outage"]["since_text"] == "09:10"
    assert h1["outage"]["expected_recovery_text"] == "10:30" and h1["outage"]["callback_mode"]
    assert h1["pressure"] == 1.0 and h1["pressure_from"] == "outage"
    assert h1["callbacks"] == {"pending": 3, "notified": 1}
    assert h1["complaints"] == {"open": 2, "due_soon": 1, "overdue": 1}
    assert [d["device"] for d in h1["devices_down"]] == ["tm1"]
    h7 = next(r for r in m["halls"] if r["hall"] == "h7")
    assert h7["complaints"]["overdue"] == 1 and h7["headcount"] == 0
    assert m["totals"]["complaints_overdue"] == 2 and m["totals"]["callbacks_pending"] == 3
