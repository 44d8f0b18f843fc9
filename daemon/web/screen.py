"""The customer-facing hall screen: a JSON model of one hall, and the routes that serve it.

`screen_model` is pure: it reads the state and the arguments it is given (the estimated wait per
service, the quiet and busy slots of the coming days, the expected recovery of an outage) and
returns what the big screen in the hall shows, with the display strings already formatted in the
hall's time zone, so the page itself does no time-zone arithmetic. `add_routes` mounts
`/screen/{hall}` (one self-contained HTML page: no login, no external resources) and
`/api/screen/{hall}` (the model as JSON, polled by the page every 2 s); `live_model` is the model
of the running daemon (its state, estimates, learned quiet hours and outage call-backs).

Everything a customer reads is in Simplified Chinese. Internal detail (the system's `detail`
string, device names, complaint data) is deliberately left out: the screen is public.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from hallwatch.daemon.core.hours import Timetable
from hallwatch.daemon.core.state import HallsState, waiting_counts
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.estimate.advice import Advice
from hallwatch.daemon.estimate.model import Estimator
from hallwatch.daemon.web.offpeak_api import hall_guidance

#: The emergency plan's peak: 20 people in the hall or a 20-minute wait.
PEAK_HEADCOUNT = 20
PEAK_WAIT_S = 20 * 60
#: Ticket classes in calling order, with the names the hall uses for them.
CLASSES: dict[str, str] = {"green": "绿色通道", "appointment": "预约", "normal": "普通"}
MAX_SLOTS = 8
#: What a service row says while the business system is down (plan 4.3: 先收件、留电话回访).
OUTAGE_ROW_NOTE = "暂停办理：可先交纸质材料或留电话"
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
STATIC = Path(__file__).resolve().parent / "static"
_HALL_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")

Model = dict[str, Any]


def range_minutes(est: float, p10: float | None, p90: float | None) -> list[int] | None:
    """The P10-P90 range in whole minutes as the screen says it, [a, b] for "约 a–b 分钟":
    widened to hold the estimate's minute, to fives past ten minutes (people read "15–25",
    not "14–23"); None when there is no range or it is a single minute."""
    if p10 is None or p90 is None or not (math.isfinite(p10) and math.isfinite(p90)):
        return None
    mid = math.ceil(est / 60)
    lo = min(math.floor(max(0.0, p10) / 60), mid)
    hi = max(math.ceil(p90 / 60), mid)
    if hi >= 10:
        lo, hi = 5 * (lo // 5), 5 * math.ceil(hi / 5)
    return None if lo >= hi else [lo, hi]


def screen_model(
    state: HallsState,
    hall: str,
    now: float,
    *,
    est_wait: Callable[[str], float | None] | None = None,
    est_range: Callable[[str], tuple[float | None, float | None]] | None = None,
    quiet_slots: list[dict[str, Any]] | None = None,
    outage_recovery_at: float | None = None,
) -> Model | None:
    """What the hall's big screen shows at `now`; None when the hall is unknown.

    `est_wait(service)` is the estimated wait in seconds of a ticket taken now (None: no open
    window serves it); `est_range(service)` its P10-P90 range in seconds, shown as "约 a–b 分钟"
    (`range_min`; None: the single figure). `quiet_slots` are the plan's 高低峰时段提醒: dicts
    with `start` and `end` as epoch seconds, or as "HH:MM" strings with a `date`
    ("YYYY-MM-DD"), an optional `kind` of "quiet" (default) or "busy" and an optional
    `avg_wait_s`; slots already over at `now` are dropped, the rest shown in time order.
    The hour slots of `estimate.offpeak.quiet_slots` (`date` and `hour`) are taken as they are.
    `outage_recovery_at` is when the information centre expects the system back (epoch s).
    """
    h = state.halls.get(hall)
    if h is None:
        return None
    zone = ZoneInfo(state.tz)
    day = state.day_at(h, now)
    counts = waiting_counts(day) if day is not None else {}
    services: set[str] = {s for s, _ in counts}
    if day is not None:
        services.update(t.service for t in day.tickets.values() if t.service)
    open_for: dict[str, int] = {}
    for win in h.windows.values():
        services.update(win.services)
        if win.state == "open":
            for s in win.services:
                open_for[s] = open_for.get(s, 0) + 1

    outage = _outage(h.systems, outage_recovery_at, zone)
    rows: list[dict[str, Any]] = []
    for service in sorted(services):
        by_class = {c: counts.get((service, c), 0) for c in CLASSES}
        est = est_wait(service) if est_wait is not None else None
        est = None if est is None or not math.isfinite(est) else max(0.0, est)
        lo, hi = est_range(service) if est_range is not None and est is not None else (None, None)
        if outage is not None:
            # Nothing can be done at a window while the business system is down: no "无需等待"
            # and no wait figure, but what the customer can do now (plan 4.3).
            est, status, note = None, "outage", OUTAGE_ROW_NOTE
        elif not open_for.get(service):
            status, note = "closed", "暂停办理"
        else:
            status, note = "open", ""
        rows.append(
            {
                "service": service,
                "waiting": sum(by_class.values()),
                "by_class": by_class,
                "estimated_wait_s": None if est is None else round(est),
                "estimated_wait_min": None if est is None else math.ceil(est / 60),
                "p10_s": None if est is None or lo is None else round(lo),
                "p90_s": None if est is None or hi is None else round(hi),
                "range_min": None if est is None else range_minutes(est, lo, hi),
                "windows_open": open_for.get(service, 0),
                "status": status,  # open | closed (no window serves it) | outage
                "status_text": note,
            }
        )

    headcount = day.occupancy if day is not None else 0
    longest = max((r["estimated_wait_s"] or 0 for r in rows), default=0)
    open_windows = [w for w in h.windows.values() if w.state == "open"]
    return {
        "hall": hall,
        "business_day": day.day.isoformat() if day is not None else None,
        "now": now,
        "now_text": _clock(now, zone),
        # The page shows the hall's time from this, not from the display PC's clock and zone.
        "utc_offset_s": _utc_offset(now, zone),
        "headcount": headcount,
        "waiting_total": sum(r["waiting"] for r in rows),
        "peak": headcount >= PEAK_HEADCOUNT or longest >= PEAK_WAIT_S,
        "services": rows,
        "green_channel": {
            "waiting": sum(r["by_class"]["green"] for r in rows),
            "note": "老、弱、病、残等特殊群体优先办理",
        },
        "windows_open": len(open_windows),
        "emergency_windows_open": sum(1 for w in open_windows if w.emergency),
        "slots": _slots(quiet_slots or [], now, zone),
        "outage": outage,
        "degraded": any(s.state == "degraded" for s in h.systems.values()),
    }


def _utc_offset(ts: float, zone: ZoneInfo) -> int:
    offset = datetime.fromtimestamp(ts, zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _clock(ts: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, zone).strftime("%H:%M")


def _slots(raw: list[dict[str, Any]], now: float, zone: ZoneInfo) -> list[dict[str, Any]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for slot in raw:
        parsed = _slot_times(slot, zone)
        if parsed is None:
            continue  # a malformed slot is not worth a broken screen
        date, start_s, end_s, end_at = parsed
        if end_at <= now:
            continue
        d = datetime.strptime(date, "%Y-%m-%d")
        kind = "busy" if slot.get("kind") == "busy" else "quiet"
        item: dict[str, Any] = {
            "date": date,
            "date_text": f"{d.month}月{d.day}日 {WEEKDAYS[d.weekday()]}",
            "start": start_s,
            "end": end_s,
            "kind": kind,
            "kind_text": "高峰" if kind == "busy" else "低峰",
        }
        avg = slot.get("avg_wait_s")
        if isinstance(avg, int | float) and math.isfinite(avg):
            item["avg_wait_min"] = math.ceil(max(0.0, avg) / 60)
        if isinstance(slot.get("source_text"), str):  # a new hall's: 参考全中心历史, 一般规律
            item["source_text"] = slot["source_text"]
        out.append((f"{date} {start_s}", item))
    out.sort(key=lambda kv: kv[0])
    return [item for _, item in out[:MAX_SLOTS]]


def _slot_times(slot: dict[str, Any], zone: ZoneInfo) -> tuple[str, str, str, float] | None:
    """(date, "HH:MM" start, "HH:MM" end, end as epoch s) of a slot in any accepted shape."""
    start, end, date, hour = slot.get("start"), slot.get("end"), slot.get("date"), slot.get("hour")
    try:
        if isinstance(start, int | float) and isinstance(end, int | float):
            begin = datetime.fromtimestamp(start, zone)
            return (
                begin.date().isoformat(),
                begin.strftime("%H:%M"),
                datetime.fromtimestamp(end, zone).strftime("%H:%M"),
                float(end),
            )
        if not isinstance(date, str):
            return None
        if isinstance(hour, int) and 0 <= hour <= 23:  # estimate.offpeak.quiet_slots: one hour
            start, end = f"{hour:02d}:00", f"{hour + 1:02d}:00"
        if not (isinstance(start, str) and isinstance(end, str)):
            return None
        day = datetime.strptime(date, "%Y-%m-%d").date()
        if end == "24:00":
            end_at = datetime.combine(day, datetime.min.time(), zone).timestamp() + 86400
        else:
            until = datetime.strptime(end, "%H:%M").time()
            end_at = datetime.combine(day, until, zone).timestamp()
        datetime.strptime(start, "%H:%M")
    except (ValueError, OverflowError, OSError):
        return None
    return date, start, end, end_at


def _outage(
    systems: Mapping[str, Any], recovery_at: float | None, zone: ZoneInfo
) -> dict[str, Any] | None:
    down = sorted((name, s) for name, s in systems.items() if s.state == "down")
    if not down:
        return None
    since = min(s.since for _, s in down)
    recovery_text = _clock(recovery_at, zone) if recovery_at is not None else None
    # The plan (三、3): tell customers, give the expected recovery time, offer a call-back.
    message = "业务系统暂时故障，工作人员正在抢修。"
    message += f"预计 {recovery_text} 恢复办理。" if recovery_text else "恢复时间确定后将及时公布。"
    message += "您可先提交纸质材料，或留下联系电话，系统恢复后由工作人员通知您前来办理。"
    return {
        "systems": [name for name, _ in down],
        "since": since,
        "since_text": _clock(since, zone),
        "expected_recovery_at": recovery_at,
        "expected_recovery_text": recovery_text,
        "message": message,
    }


def live_model(
    *,
    state: Callable[[], HallsState],
    estimator: Callable[[], Estimator],
    advice: Callable[[str], Advice | None],
    recovery_at: Callable[[str], float | None],
    clock: Callable[[], float],
    calendar: WorkCalendar,
    hours: Timetable | None = None,
) -> Callable[[str], Model | None]:
    """`screen_model` of the running daemon: its state, the estimator's waits and learned quiet
    hours (within the hall's `hours`; the centre's or the typical day's for a new hall), and the
    expected end of a hall's system outage (`recovery_at(hall)`)."""
    timetable = hours or Timetable()

    def model(hall: str) -> Model | None:
        now = clock()
        st = state()
        if hall not in st.halls:
            return None
        off = hall_guidance(estimator(), hall, now, tz=st.tz, calendar=calendar, hours=timetable)
        waits = calibrated_waits(estimator(), advice(hall), hall)

        def wait(service: str) -> float | None:
            return waits.get(service, (None, None, None))[0]

        def spread(service: str) -> tuple[float | None, float | None]:
            return waits.get(service, (None, None, None))[1:]

        return screen_model(
            st,
            hall,
            now,
            est_wait=wait,
            est_range=spread,
            quiet_slots=off["quiet_slots"],
            outage_recovery_at=recovery_at(hall),
        )

    return model


def calibrated_waits(
    est: Estimator, adv: Advice | None, hall: str
) -> dict[str, tuple[float | None, float | None, float | None]]:
    """(estimate, p10, p90) of a new ticket's wait per service: the advice's waits are the
    simulation's forecasts, corrected and ranged the way the estimate topic's are
    (`Estimator.calibrated`)."""
    if adv is None:
        return {}
    return {
        sa.service: est.calibrated(hall, sa.estimated_wait_s, spread=sa.spread)
        for sa in adv.services
    }


def state_waits(est: Estimator, adv: Advice | None, hall: str) -> dict[str, Any]:
    """What /api/state shows per service of a hall: a new ticket's wait and its P10-P90."""

    def sec(x: float | None) -> int | None:
        return None if x is None else round(x)

    return {
        service: {"estimated_wait_s": sec(e), "p10_s": sec(lo), "p90_s": sec(hi)}
        for service, (e, lo, hi) in sorted(calibrated_waits(est, adv, hall).items())
    }


def add_routes(app: web.Application, model: Callable[[str], Model | None]) -> None:
    """Mount GET /screen/{hall} (the page) and GET /api/screen/{hall} (`model(hall)` as JSON)."""
    page = (STATIC / "screen.html").read_bytes()

    async def screen_page(request: web.Request) -> web.Response:
        if not _HALL_ID.fullmatch(request.match_info["hall"]):
            raise web.HTTPNotFound()
        return web.Response(
            body=page,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def screen_api(request: web.Request) -> web.Response:
        hall = request.match_info["hall"]
        data = model(hall) if _HALL_ID.fullmatch(hall) else None
        if data is None:
            return web.json_response(
                {"error": f"unknown hall {hall!r}"},
                status=404,
                headers={"Cache-Control": "no-store"},
            )
        return web.json_response(data, headers={"Cache-Control": "no-store"})

    app.router.add_get("/screen/{hall}", screen_page)
    app.router.add_get("/api/screen/{hall}", screen_api)
