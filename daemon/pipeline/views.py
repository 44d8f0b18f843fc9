"""The per-hall view the alert rules read, built from the state and the estimator's advice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from hallwatch.alerts.view import DeviceView, HallView
from hallwatch.daemon.core.state import WAITING, Day, Hall, HallsState, waiting_counts
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.estimate.advice import Advice

# A replayed day is looked at this long after its last event, so rules waiting on a `for` settle
# (`hallwatch replay --alerts-out` and the reports both end their days this way).
SETTLE_S = 300.0


class Advisor(Protocol):
    def advice(self, state: HallsState, hall: str, now: float) -> Advice: ...


def device_views(hall: Hall, now: float, heartbeat_timeout_s: float) -> tuple[DeviceView, ...]:
    """Each device up or down now, and since when (a silent device is down since it went quiet)."""
    out = []
    for name, dev in sorted(hall.devices.items()):
        if dev.state != "online":
            out.append(DeviceView(name, dev.kind, False, dev.since))
        elif now - dev.last_seen > heartbeat_timeout_s:
            out.append(DeviceView(name, dev.kind, False, dev.last_seen + heartbeat_timeout_s))
        else:
            out.append(DeviceView(name, dev.kind, True, dev.since))
    return tuple(out)


def endured(day: Day, now: float) -> dict[str, float]:
    """Per service, how long the longest-waiting ticket still in the queue (issued, not yet
    called) has waited at `now`: since it (re-)entered the queue, a transfer counting anew."""
    first: dict[str, float] = {}
    for t in day.tickets.values():
        if t.status == WAITING and t.service and t.issued_at is not None:
            first[t.service] = min(first.get(t.service, t.issued_at), t.issued_at)
    return {s: max(0.0, now - at) for s, at in sorted(first.items())}


def uncovered_since(hall: Hall, day: Day, now: float) -> dict[str, float]:
    """Services with tickets waiting and no open window serving them, each with since when: the
    later of its longest wait's start and the last time a window serving it stopped."""
    open_services = {s for w in hall.windows.values() if w.state == "open" for s in w.services}
    out: dict[str, float] = {}
    for service, waited in endured(day, now).items():
        if service in open_services:
            continue
        stops = [w.since for w in hall.windows.values() if service in w.services]
        out[service] = max([now - waited, *stops])
    return out


def hall_view(
    state: HallsState,
    name: str,
    now: float,
    *,
    advice: Advice | None,
    heartbeat_timeout_s: float,
    calendar: WorkCalendar,
) -> HallView:
    """One hall as the rules see it at `now` (yesterday's day reads as an empty hall)."""
    hall = state.halls[name]
    today = state.business_day(now)
    day = state.day_at(hall, now)
    waiting: dict[str, int] = {}
    if day is not None:
        for (service, _prio), n in waiting_counts(day).items():
            waiting[service] = waiting.get(service, 0) + n
    est: dict[str, float | None] = {}
    extra: dict[str, int] = {}
    overrun: float | None = None
    spare: int | None = None
    all_open: float | None = None
    if advice is not None:
        for sa in advice.services:
            est[sa.service] = sa.estimated_wait_s
            if sa.windows > 0:
                extra[sa.service] = sa.windows
        overrun = advice.closing_overrun_s
        spare, all_open = advice.spare_windows, advice.all_open_overrun_s
    open_windows = [w for w in hall.windows.values() if w.state == "open"]
    return HallView(
        hall=name,
        now=now,
        headcount=day.occupancy if day else 0,
        est_wait_s_by_service=est,
        waiting_by_service=waiting,
        endured_s_by_service=endured(day, now) if day else {},
        uncovered_since=uncovered_since(hall, day, now) if day else {},
        windows_open=len(open_windows),
        emergency_windows_open=sum(1 for w in open_windows if w.emergency),
        extra_windows_by_service=extra,
        closing_overrun_s=overrun,
        spare_windows=spare,
        all_open_overrun_s=all_open,
        devices=device_views(hall, now, heartbeat_timeout_s),
        systems={s: (v.state, v.since) for s, v in sorted(hall.systems.items())},
        is_working_day=calendar.is_working_day(today),
    )


def all_views(
    state: HallsState,
    now: float,
    advise: Callable[[str], Advice | None],
    heartbeat_timeout_s: float,
    calendar: WorkCalendar,
) -> list[HallView]:
    return [
        hall_view(
            state,
            name,
            now,
            advice=advise(name),
            heartbeat_timeout_s=heartbeat_timeout_s,
            calendar=calendar,
        )
        for name in sorted(state.halls)
    ]
