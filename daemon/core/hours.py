"""A hall's hours on the official calendar: opening, closing and the lunch rotation.

`Hours` is one hall's working day (opening, closing, which window takes its lunch when, and the
services of its windows where the config knows them); `Timetable` is the centre's default with
each hall's own (`[hours]`, built by `config.hours`). The alert rules, the staffing advice's
"clear by closing", the off-peak guidance and the staff procedures all read them from here.

A notice that needs a person to act (a complaint to verify, a deadline passed) is worth nothing
at 20:00 or on a Sunday: it waits for the next opening, and a reminder ahead of a deadline moves
back to the opening of the last working day before it, so the whole day is left to act.

`lunch_gaps` is the rotation as a check (午间轮班: every service stays covered): the stretches of
the day when the windows off to lunch leave a service with no window. Pure: epoch seconds in,
epoch seconds out, in the hall's time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hallwatch.daemon.core.workdays import WorkCalendar

# A calendar with no working day for this long is misconfigured; never loop forever on it.
_SEARCH_DAYS = 60


@dataclass(frozen=True, slots=True)
class Lunch:
    """One window's lunch slot in the rotation: `window` is off from `start` to `end`."""

    window: str
    start: time
    end: time

    def covers(self, t: time) -> bool:
        return self.start <= t < self.end

    def text(self) -> str:
        return f"{self.window} {hhmm(self.start)}–{hhmm(self.end)}"


@dataclass(frozen=True, slots=True)
class Hours:
    """A hall's hours on a working day: opening, closing, the lunch rotation, and the services
    of its windows where the config knows them (for checking the rotation before the day)."""

    open: time = time(9, 0)
    close: time = time(17, 0)
    lunch: tuple[Lunch, ...] = ()
    windows: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def at_lunch(self, t: time) -> tuple[Lunch, ...]:
        """The rotation's slots under way at local time `t`."""
        return tuple(slot for slot in self.lunch if slot.covers(t))


@dataclass(frozen=True, slots=True)
class Timetable:
    """The centre's hours: a default, and each hall's own where it differs."""

    default: Hours = Hours()
    halls: Mapping[str, Hours] = field(default_factory=dict)

    def for_hall(self, hall: str) -> Hours:
        return self.halls.get(hall, self.default)


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch of the day when the windows at lunch leave `service` with no window."""

    start: time
    end: time
    service: str
    away: tuple[str, ...]  # the windows at lunch then that serve it

    def text(self) -> str:
        away = "、".join(self.away)
        return f"{hhmm(self.start)}–{hhmm(self.end)} {self.service} 无窗口（{away} 就餐）"


def hhmm(t: time) -> str:
    return t.strftime("%H:%M")


def lunch_gaps(hours: Hours) -> list[Gap]:
    """Where the rotation leaves a service uncovered, given the windows' services (none known:
    no gap can be seen here, the runtime `service_uncovered` alert is the check). Each stretch
    between two consecutive slot boundaries is checked; adjacent stretches with the same gap
    are merged."""
    if not hours.windows or not hours.lunch:
        return []
    cuts = sorted({s.start for s in hours.lunch} | {s.end for s in hours.lunch})
    services = sorted({s for served in hours.windows.values() for s in served})
    out: list[Gap] = []
    for start, end in pairwise(cuts):
        away = {slot.window for slot in hours.at_lunch(start)}
        present = {s for w, served in hours.windows.items() if w not in away for s in served}
        for service in services:
            if service in present:
                continue
            who = tuple(sorted(w for w in away if service in hours.windows.get(w, ())))
            last = next((g for g in reversed(out) if g.service == service), None)
            if last is not None and last.end == start and last.away == who:
                out[out.index(last)] = Gap(last.start, end, service, who)
            else:
                out.append(Gap(start, end, service, who))
    return out


def _at(day: date, t: time, zone: ZoneInfo) -> float:
    return datetime.combine(day, t, zone).timestamp()


def in_hours(ts: float, hours: Hours, calendar: WorkCalendar, tz: str) -> bool:
    """A working day, between opening and closing time."""
    local = datetime.fromtimestamp(ts, ZoneInfo(tz))
    return calendar.is_working_day(local.date()) and hours.open <= local.time() < hours.close


def next_opening(ts: float, hours: Hours, calendar: WorkCalendar, tz: str) -> float:
    """`ts` itself if it falls in working hours, else the next opening of a working day."""
    if in_hours(ts, hours, calendar, tz):
        return ts
    zone = ZoneInfo(tz)
    day = datetime.fromtimestamp(ts, zone).date()
    for i in range(_SEARCH_DAYS):
        d = day + timedelta(days=i)
        at = _at(d, hours.open, zone)
        if at >= ts and calendar.is_working_day(d):
            return at
    return ts


def last_opening_before(ts: float, hours: Hours, calendar: WorkCalendar, tz: str) -> float:
    """`ts` itself if it falls in working hours, else the opening of the last working day that
    opened at or before `ts` (a reminder due at 20:00 goes out at that day's opening)."""
    if in_hours(ts, hours, calendar, tz):
        return ts
    zone = ZoneInfo(tz)
    day = datetime.fromtimestamp(ts, zone).date()
    for i in range(_SEARCH_DAYS):
        d = day - timedelta(days=i)
        at = _at(d, hours.open, zone)
        if at <= ts and calendar.is_working_day(d):
            return at
    return ts
