"""The per-hall view the alert rules read, built from the state and the estimator's advice."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple, Protocol

from hallwatch.alerts.view import DeviceView, HallView
from hallwatch.daemon.core.state import WAITING, Day, Hall, HallsState
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


class Queue(NamedTuple):
    """What a day's queue holds, from one walk over its tickets: it changes only with events,
    so the tick keeps it per hall until the hall's state changes (`QueueMemo`)."""

    waiting: dict[str, int]  # tickets waiting per service
    first: dict[str, float]  # per service, when its longest-waiting ticket (re-)entered the queue


def queue_of(day: Day) -> Queue:
    waiting: dict[str, int] = {}
    first: dict[str, float] = {}
    for t in day.tickets.values():
        if t.status != WAITING or not t.service:
            continue
        waiting[t.service] = waiting.get(t.service, 0) + 1
        if t.issued_at is not None:
            first[t.service] = min(first.get(t.service, t.issued_at), t.issued_at)
    return Queue(waiting, dict(sorted(first.items())))


class QueueMemo:
    """Per hall, the `Queue` of its day as of a version of its state (`schedule.Changes`): a
    quiet hall's sweep reads it instead of walking its day's tickets five times."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[Day, int, Queue]] = {}

    def get(self, hall: str, day: Day, version: int | None) -> Queue:
        kept = self._kept.get(hall)
        if version is not None and kept is not None and kept[0] is day and kept[1] == version:
            return kept[2]
        queue = queue_of(day)
        if version is not None:
            self._kept[hall] = (day, version, queue)
        return queue

    def forget(self, live: Iterable[str]) -> None:
        keep = set(live)
        for hall in [h for h in self._kept if h not in keep]:
            del self._kept[hall]


def endured(day: Day, now: float, queue: Queue | None = None) -> dict[str, float]:
    """Per service, how long the longest-waiting ticket still in the queue (issued, not yet
    called) has waited at `now`: since it (re-)entered the queue, a transfer counting anew."""
    first = (queue or queue_of(day)).first
    return {s: max(0.0, now - at) for s, at in first.items()}


def uncovered_since(
    hall: Hall, day: Day, now: float, queue: Queue | None = None
) -> dict[str, float]:
    """Services with tickets waiting and no open window serving them, each with since when: the
    later of its longest wait's start and the last time a window serving it stopped."""
    open_services = {s for w in hall.windows.values() if w.state == "open" for s in w.services}
    out: dict[str, float] = {}
    for service, waited in endured(day, now, queue).items():
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
    queue: Queue | None = None,
) -> HallView:
    """One hall as the rules see it at `now` (yesterday's day reads as an empty hall). `queue`:
    its day's `Queue`, when the caller keeps it."""
    hall = state.halls[name]
    today = state.business_day(now)
    day = state.day_at(hall, now)
    if day is not None and queue is None:
        queue = queue_of(day)
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
        waiting_by_service=dict(queue.waiting) if queue else {},
        endured_s_by_service=endured(day, now, queue) if day else {},
        uncovered_since=uncovered_since(hall, day, now, queue) if day else {},
        windows_open=len(open_windows),
        emergency_windows_open=sum(1 for w in open_windows if w.emergency),
        extra_windows_by_service=extra,
        closing_overrun_s=overrun,
        spare_windows=spare,
        all_open_overrun_s=all_open,
        devices=device_views(hall, now, heartbeat_timeout_s),
        systems={s: (v.state, v.since) for s, v in sorted(hall.systems.items())},
        is_working_day=calendar.is_working_day(today),
        last_event_at=hall.last_event_at or None,  # how far in event time (#18, one voice)
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
