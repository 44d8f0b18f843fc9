"""The centre overview for the duty officer: every hall ranked by pressure, as plain data.

`overview_model` is pure: it reads the hall state, the hall views the alert rules read (with the
estimator's staffing advice in them), the alert episodes, the complaint and call-back registers'
figures and `now`, all given as arguments, and returns a JSON-able model. Display strings are
formatted here in the hall's time zone, so the page does no arithmetic and no time zones.

Pressure is a hall's worst figure against its own peak trigger (`[alerts]` queue_peak: 20 people
or a 20-minute wait by default): people in the hall over `headcount`, and the longest wait, the
forecast for a ticket taken now or the longest wait already endured by a customer still waiting,
whichever is longer, over `wait_s`. A service with customers waiting and no open window serving
it, and an information system that is down, each put the hall at 1.0 at least: both are peak
conditions whatever the figures say. Halls are ranked by pressure, then by unacknowledged alerts,
then by people waiting.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hallwatch.alerts.rules import Episode
from hallwatch.alerts.view import HallView
from hallwatch.daemon.base import glossary
from hallwatch.daemon.config.alerts import RuleSettings
from hallwatch.daemon.core.state import WAITING, Day, Hall, HallsState
from hallwatch.daemon.staff.complaints import HallCounts
from hallwatch.daemon.staff.outage import OutageStatus

#: A hall at this share of its peak trigger is busy (the plan's clear marks, 15 of 20, are 0.75).
BUSY = 0.75
LEVEL_TEXT = {"peak": "高峰", "busy": "繁忙", "normal": "正常"}
SOURCE_TEXT = {
    "headcount": "厅内人数",
    "endured": "已等待时长",
    "forecast": "预计等待",
    "uncovered": "有业务无窗口",
    "outage": "信息系统故障",
    "none": "",
}

Model = dict[str, Any]


def _clock(ts: float | None, zone: ZoneInfo) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, zone).strftime("%H:%M")


def _minutes(seconds: float) -> int:
    return max(0, math.ceil(seconds / 60))


def _wait(service: str, seconds: float, names: Mapping[str, str]) -> Model:
    return {
        "service": service,
        "service_name": names.get(service, service),
        "wait_s": round(seconds),
        "wait_min": _minutes(seconds),
    }


def endured_by_service(day: Day | None, now: float) -> dict[str, float]:
    """The longest wait already endured per service by a ticket still waiting: `now` minus when
    it (re-)entered the queue (a transfer starts a new wait). Tickets whose `issued` never
    arrived have no start and are left out; a start after `now` (a fast device clock) is 0."""
    out: dict[str, float] = {}
    if day is None:
        return out
    for t in day.tickets.values():
        if t.status == WAITING and t.service and t.issued_at is not None:
            out[t.service] = max(out.get(t.service, 0.0), max(0.0, now - t.issued_at))
    return out


def uncovered_services(hall: Hall, day: Day | None) -> dict[str, int]:
    """Services with customers waiting and no open window serving them: waiting per service."""
    if day is None:
        return {}
    served = {s for w in hall.windows.values() if w.state == "open" for s in w.services}
    waiting: dict[str, int] = {}
    for t in day.tickets.values():
        if t.status == WAITING and t.service and t.service not in served:
            waiting[t.service] = waiting.get(t.service, 0) + 1
    return dict(sorted(waiting.items()))


def _alert(e: Episode, zone: ZoneInfo) -> Model:
    return {
        "alert_id": e.alert_id,
        "alert": e.alert,
        "alert_text": glossary.ALERTS.get(e.alert, e.alert),
        "subject": e.subject,
        "level": e.level,
        "level_text": glossary.LEVELS.get(e.level, str(e.level)),
        "since": e.since,
        "since_text": _clock(e.since, zone),
        "summary": e.summary,
        "acked": e.acked_at is not None,
        "acked_by": e.acked_by,
        "acked_at": e.acked_at,
        "acked_text": _clock(e.acked_at, zone),
    }


def _outage(st: OutageStatus | None, zone: ZoneInfo) -> Model | None:
    if st is None:
        return None
    return {
        "systems": list(st.systems),
        "since": st.since,
        "since_text": _clock(st.since, zone),
        "callback_mode": st.callback_mode,
        "expected_recovery_at": st.expected_recovery_at,
        "expected_recovery_text": _clock(st.expected_recovery_at, zone),
    }


def _pressure(
    headcount: float,
    endured: float,
    forecast: float,
    head_mark: float,
    wait_mark: float,
    *,
    uncovered: bool,
    outage: bool,
) -> tuple[float, str]:
    """The hall's pressure and the figure it comes from (ties: the first named here)."""
    parts = [
        (headcount / head_mark if head_mark > 0 else 0.0, "headcount"),
        (endured / wait_mark if wait_mark > 0 else 0.0, "endured"),
        (forecast / wait_mark if wait_mark > 0 else 0.0, "forecast"),
        (1.0 if uncovered else 0.0, "uncovered"),
        (1.0 if outage else 0.0, "outage"),
    ]
    best, source = 0.0, "none"
    for value, name in parts:
        if value > best:
            best, source = value, name
    return best, source


def hall_model(
    state: HallsState,
    name: str,
    view: HallView | None,
    episodes: Iterable[Episode],
    now: float,
    *,
    rules: RuleSettings,
    service_names: Mapping[str, str],
    complaints: HallCounts | None,
    callbacks: tuple[int, int] | None,
    outage: OutageStatus | None,
) -> Model:
    """One hall's row of the overview (unranked)."""
    zone = ZoneInfo(state.tz)
    hall = state.halls.get(name)
    day = state.day_at(hall, now) if hall is not None else None
    hr = rules.for_hall(name)
    endured = endured_by_service(day, now)
    uncovered = uncovered_services(hall, day) if hall is not None else {}
    forecasts = {
        s: w
        for s, w in (view.est_wait_s_by_service.items() if view else ())
        if w is not None and math.isfinite(w)
    }
    top_end = max(endured.items(), key=lambda kv: (kv[1], kv[0]), default=None)
    top_fc = max(forecasts.items(), key=lambda kv: (kv[1], kv[0]), default=None)
    headcount = view.headcount if view else (day.occupancy if day else 0)
    pressure, source = _pressure(
        headcount,
        top_end[1] if top_end else 0.0,
        top_fc[1] if top_fc else 0.0,
        hr.queue_peak.headcount,
        hr.queue_peak.wait_s,
        uncovered=bool(uncovered),
        outage=outage is not None,
    )
    level = "peak" if pressure >= 1.0 else "busy" if pressure >= BUSY else "normal"
    alerts = [_alert(e, zone) for e in episodes if e.hall == name and e.phase == "firing"]
    extra = dict(view.extra_windows_by_service) if view else {}
    overrun = view.closing_overrun_s if view else None
    pending, notified = callbacks or (0, 0)
    counts = complaints or HallCounts()
    return {
        "hall": name,
        "name": hr.name or name,
        "business_day": day.day.isoformat() if day else None,
        "pressure": round(pressure, 2),
        "pressure_from": source,
        "pressure_from_text": SOURCE_TEXT[source],
        "level": level,
        "level_text": LEVEL_TEXT[level],
        "headcount": headcount,
        "headcount_mark": hr.queue_peak.headcount,
        "wait_mark_min": _minutes(hr.queue_peak.wait_s),
        "waiting": sum(view.waiting_by_service.values()) if view else 0,
        "windows_open": view.windows_open if view else 0,
        "emergency_windows_open": view.emergency_windows_open if view else 0,
        "longest_endured": _wait(*top_end, service_names) if top_end else None,
        "longest_forecast": _wait(*top_fc, service_names) if top_fc else None,
        "uncovered": [
            {
                "service": s,
                "service_name": service_names.get(s, s),
                "waiting": n,
                "endured_min": _minutes(endured.get(s, 0.0)),
            }
            for s, n in uncovered.items()
        ],
        "advice": [
            {"service": s, "service_name": service_names.get(s, s), "extra_windows": n}
            for s, n in sorted(extra.items(), key=lambda kv: (-kv[1], kv[0]))
            if n > 0
        ],
        "closing_overrun_min": _minutes(overrun) if overrun is not None and overrun > 0 else None,
        "alerts": alerts,
        "alerts_unacked": sum(1 for a in alerts if not a["acked"]),
        "devices_down": [
            {"device": d.device, "kind": d.kind, "kind_text": glossary.DEVICE_KINDS.get(d.kind)}
            for d in (view.devices if view else ())
            if not d.up
        ],
        "outage": _outage(outage, zone),
        "callbacks": {"pending": pending, "notified": notified},
        "complaints": {
            "open": counts.open,
            "due_soon": counts.due_soon,
            "overdue": counts.overdue,
        },
    }


def rank_key(row: Model) -> tuple[float, int, int, str]:
    """Highest pressure first; then more unacknowledged alerts, more people waiting, the name."""
    return (-row["pressure"], -row["alerts_unacked"], -row["waiting"], row["hall"])


def overview_model(
    state: HallsState,
    views: Mapping[str, HallView],
    episodes: Iterable[Episode],
    now: float,
    *,
    rules: RuleSettings,
    service_names: Mapping[str, str] | None = None,
    complaints: Mapping[str, HallCounts] | None = None,
    callbacks: Mapping[str, tuple[int, int]] | None = None,
    outages: Mapping[str, OutageStatus] | None = None,
) -> Model:
    """The overview at `now`: every hall the state, an alert or a register knows, ranked.

    `views`: hall -> the rules' view of it (pipeline.views.hall_view, advice included);
    `episodes`: the alert engine's episodes (only firing ones are shown); `complaints`: hall ->
    open/due-soon/overdue counts; `callbacks`: hall -> (pending, notified); `outages`: hall ->
    its outage now."""
    eps = list(episodes)
    complaints, callbacks, outages = complaints or {}, callbacks or {}, outages or {}
    names = set(state.halls) | set(views) | {e.hall for e in eps if e.phase == "firing"}
    names |= {h for h, c in complaints.items() if c.open}
    names |= {h for h, (p, _) in callbacks.items() if p}
    names |= set(outages)
    rows = sorted(
        (
            hall_model(
                state,
                h,
                views.get(h),
                eps,
                now,
                rules=rules,
                service_names=service_names or {},
                complaints=complaints.get(h),
                callbacks=callbacks.get(h),
                outage=outages.get(h),
            )
            for h in names
        ),
        key=rank_key,
    )
    for i, row in enumerate(rows, 1):
        row["rank"] = i
    zone = ZoneInfo(state.tz)
    return {
        "now": now,
        "now_text": datetime.fromtimestamp(now, zone).strftime("%Y-%m-%d %H:%M:%S"),
        "totals": totals(rows),
        "halls": rows,
    }


def totals(rows: list[Model]) -> Model:
    """The centre's figures over the overview's rows."""
    return {
        "halls": len(rows),
        "peak": sum(1 for r in rows if r["level"] == "peak"),
        "headcount": sum(r["headcount"] for r in rows),
        "waiting": sum(r["waiting"] for r in rows),
        "uncovered": sum(len(r["uncovered"]) for r in rows),
        "alerts": sum(len(r["alerts"]) for r in rows),
        "alerts_unacked": sum(r["alerts_unacked"] for r in rows),
        "outages": sum(1 for r in rows if r["outage"]),
        "callbacks_pending": sum(r["callbacks"]["pending"] for r in rows),
        "complaints_due_soon": sum(r["complaints"]["due_soon"] for r in rows),
        "complaints_overdue": sum(r["complaints"]["overdue"] for r in rows),
    }
