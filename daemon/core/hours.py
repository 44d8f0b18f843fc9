"""Working hours on the official calendar: when staff can be told something.

A notice that needs a person to act (a complaint to verify, a deadline passed) is worth nothing
at 20:00 or on a Sunday: it waits for the next opening, and a reminder ahead of a deadline moves
back to the opening of the last working day before it, so the whole day is left to act. Pure:
epoch seconds in, epoch seconds out, in the hall's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hallwatch.daemon.core.workdays import WorkCalendar

# A calendar with no working day for this long is misconfigured; never loop forever on it.
_SEARCH_DAYS = 60


@dataclass(frozen=True, slots=True)
class Hours:
    """A hall's opening hours on a working day (the alert rules' `open` and `close`)."""

    open: time = time(9, 0)
    close: time = time(17, 0)


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
