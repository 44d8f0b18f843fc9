"""Live hall state: a pure, synchronous core driven by events and event time.

`HallsState.apply(event)` is the only way state changes; it reads no clock, socket or
environment, so the live daemon, `hallwatch replay` and the tests drive exactly the same code.
State classes are msgspec structs so a snapshot is one `msgspec.json.encode` away.

Day-scoped data (tickets, queues, headcount, today's counts) is per hall and per business day:
ticket numbers restart every day, and the first event of a new business day starts it afresh.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from sys import intern
from zoneinfo import ZoneInfo

import msgspec
from hallwatch.daemon.core.doors import Door, Headcount, newest, refold, step
from hallwatch.daemon.core.tickets import (
    CALLED,
    CANCELLED,
    COMPLETED,
    NO_SHOW,
    WAITING,
    Fold,
    Ticket,
    add,
    mark,
)
from hallwatch.daemon.core.windows import Window, serve
from hallwatch.sensors.events import (
    PRIORITY_RANK,
    ComplaintEvent,
    DeviceEvent,
    DoorEvent,
    Event,
    SystemEvent,
    TicketEvent,
    WindowEvent,
)

__all__ = [  # the ticket's names, long imported from here
    "CALLED",
    "CANCELLED",
    "COMPLETED",
    "NO_SHOW",
    "WAITING",
    "Door",
    "Ticket",
    "Window",
]

SNAPSHOT_VERSION = 3
_COMPLAINT_DAYS = 31  # business days whose complaint counts are kept, for the daily cap


class Outcome(StrEnum):
    """What `HallsState.apply` did with an event. Only an APPLIED event may reach the later
    stages (estimator, learning); the others are stored but left out of the live picture."""

    APPLIED = "applied"
    STALE_DAY = "stale_day"  # from a business day before the hall's current one
    OUTDATED = "outdated"  # older than what the state holds for that window, device or system
    OVER_LIMIT = "over_limit"  # would pass a cap in `Limits`


class Device(msgspec.Struct):
    state: str
    kind: str
    last_seen: float
    since: float


class System(msgspec.Struct):
    state: str
    since: float
    detail: str | None = None
    last_seen: float = 0.0  # event time of the newest report (`since` only moves on a change)


class Complaint(msgspec.Struct):
    severity: str
    channel: str
    received_at: float
    received_by: str


class Day(msgspec.Struct):
    """Everything in a hall that starts afresh each business day."""

    day: date
    tickets: dict[str, Ticket] = msgspec.field(default_factory=dict)
    occupancy: int = 0
    peak_occupancy: int = 0
    peak_occupancy_at: float | None = None
    issued: int = 0
    called: int = 0
    completed: int = 0
    no_show: int = 0
    cancelled: int = 0
    transferred: int = 0
    wait_total_s: float = 0.0  # sum of (called_at - issued_at) over called tickets
    wait_total_us: int = 0  # the same in integer microseconds: exact, whatever the order


class Limits(msgspec.Struct, frozen=True):
    """Caps on what devices can make us track, so a bad device cannot explode the metrics.

    An event that would add a hall, service, window, door, device, system, ticket or complaint
    beyond its cap is kept in the store but not applied, and counted in `HallsState.over_limit`.
    Any ticket event can create its ticket (a `cancelled` for a ticket never issued does), so the
    ticket cap holds for all of them.
    """

    halls: int = 100
    services: int = 50  # per hall
    windows: int = 100  # per hall
    doors: int = 50  # per hall
    devices: int = 500  # per hall
    systems: int = 20  # per hall
    tickets: int = 5000  # per hall and business day
    complaints: int = 200  # per hall and business day


class Hall(msgspec.Struct):
    services: dict[str, float] = msgspec.field(default_factory=dict)  # name -> first seen
    today: Day | None = None
    windows: dict[str, Window] = msgspec.field(default_factory=dict)
    doors: dict[str, Door] = msgspec.field(default_factory=dict)
    devices: dict[str, Device] = msgspec.field(default_factory=dict)
    systems: dict[str, System] = msgspec.field(default_factory=dict)
    complaints: dict[str, Complaint] = msgspec.field(default_factory=dict)
    last_event_at: float = 0.0
    stale_events: int = 0  # events from an earlier business day, after the hall moved on
    complaint_days: dict[str, int] = msgspec.field(default_factory=dict)  # ISO day -> count


class HallsState(msgspec.Struct):
    """All halls; the root of a snapshot."""

    tz: str = "Asia/Shanghai"
    halls: dict[str, Hall] = msgspec.field(default_factory=dict)
    applied: int = 0
    limits: Limits = Limits()
    over_limit: int = 0

    def business_day(self, ts: float) -> date:
        return datetime.fromtimestamp(ts, _zone(self.tz)).date()

    def day_at(self, hall: Hall, now: float) -> Day | None:
        """The hall's business day as seen at `now`: after midnight, yesterday's queue and
        headcount are not "now" any more, so a hall with no event yet today has no day."""
        day = hall.today
        return day if day is not None and day.day >= self.business_day(now) else None

    def apply(self, event: Event) -> Outcome:
        """Apply one accepted (already de-duplicated) event; says what it did."""
        hall = self.halls.get(event.hall)
        if hall is None and len(self.halls) >= self.limits.halls:
            self.over_limit += 1
            return Outcome.OVER_LIMIT
        new = hall is None
        if hall is None:
            hall = Hall()
        outcome = self._refuses(hall, event)
        door_baseline = outcome is Outcome.STALE_DAY and isinstance(event, DoorEvent)
        if (outcome is None or door_baseline) and not self._admits(hall, event):
            outcome = Outcome.OVER_LIMIT
        if outcome is Outcome.OVER_LIMIT:
            self.over_limit += 1
            return outcome
        if new:
            self.halls[event.hall] = hall
        if outcome is Outcome.STALE_DAY:
            hall.stale_events += 1
            if isinstance(event, DoorEvent):
                # Yesterday's last reading is a better baseline for today's count than an older
                # one; it moves no one in or out of today's hall.
                _apply_door(hall, None, event)
            return outcome
        if outcome is not None:
            return outcome
        self.applied += 1
        hall.last_event_at = max(hall.last_event_at, event.ts)
        if isinstance(event, DeviceEvent):
            _apply_device(hall, event)
        elif isinstance(event, SystemEvent):
            _apply_system(hall, event)
        elif isinstance(event, ComplaintEvent):
            _apply_complaint(hall, event)
        elif isinstance(event, WindowEvent):
            _apply_window(hall, event)
        else:
            day = self._day(hall, event.ts)
            if isinstance(event, DoorEvent):
                _apply_door(hall, day, event)
            else:
                _apply_ticket(hall, day, event)
        return Outcome.APPLIED

    def _refuses(self, hall: Hall, event: Event) -> Outcome | None:
        """STALE_DAY or OUTDATED when the event is older than what the hall holds; else None."""
        if isinstance(event, TicketEvent | DoorEvent):
            if hall.today is not None and self.business_day(event.ts) < hall.today.day:
                return Outcome.STALE_DAY
        elif isinstance(event, WindowEvent):
            win = hall.windows.get(event.window)
            if win is not None and _report(event) < (
                win.since,
                win.state,
                win.services,
                win.emergency,
            ):
                return Outcome.OUTDATED  # an older state report arriving late (or a tie lost)
        elif isinstance(event, DeviceEvent):
            dev = hall.devices.get(event.device)
            if dev is not None and event.ts < dev.last_seen:
                return Outcome.OUTDATED  # a late heartbeat says nothing about now
        elif isinstance(event, SystemEvent):
            sys_ = hall.systems.get(event.system)
            if sys_ is not None and event.ts < max(sys_.since, sys_.last_seen):
                return Outcome.OUTDATED  # e.g. MQTT and the HTTP probe interleaved
        return None

    def _admits(self, hall: Hall, event: Event) -> bool:
        """Whether `event` stays within the limits; registers the services it brings."""
        lim = self.limits
        if isinstance(event, WindowEvent):
            if event.window not in hall.windows and len(hall.windows) >= lim.windows:
                return False
            new = [s for s in dict.fromkeys(event.services) if s not in hall.services]
        elif isinstance(event, TicketEvent):
            if (
                event.window is not None
                and event.window not in hall.windows
                and len(hall.windows) >= lim.windows
            ):
                return False
            day = hall.today
            if (
                day is not None
                and event.ticket not in day.tickets
                and len(day.tickets) >= lim.tickets
                and self.business_day(event.ts) == day.day
            ):
                return False  # any ticket event creates its ticket, `issued` or not
            new = [event.service] if event.service and event.service not in hall.services else []
        elif isinstance(event, DoorEvent):
            return event.door in hall.doors or len(hall.doors) < lim.doors
        elif isinstance(event, DeviceEvent):
            return event.device in hall.devices or len(hall.devices) < lim.devices
        elif isinstance(event, SystemEvent):
            return event.system in hall.systems or len(hall.systems) < lim.systems
        else:
            return self._admits_complaint(hall, event)
        if len(hall.services) + len(new) > lim.services:
            return False
        for service in new:
            hall.services[service] = event.ts
        return True

    def _admits_complaint(self, hall: Hall, event: ComplaintEvent) -> bool:
        """At most `limits.complaints` a business day; counts are kept for the latest days, and a
        complaint from a day older than all of them is refused once they are full."""
        if event.complaint_id in hall.complaints:
            return True  # the same complaint again changes nothing
        day = self.business_day(event.ts).isoformat()
        days = hall.complaint_days
        n = days.get(day)
        if n is None and len(days) >= _COMPLAINT_DAYS:
            oldest = min(days)
            if day < oldest:
                return False
            del days[oldest]
        if (n or 0) >= self.limits.complaints:
            return False
        days[day] = (n or 0) + 1
        return True

    def _day(self, hall: Hall, ts: float) -> Day:
        """The hall's business day for an event at `ts` (not a stale one: `_refuses` saw to it),
        starting a new day when `ts` is past the current one."""
        bday = self.business_day(ts)
        if hall.today is None or bday > hall.today.day:
            hall.today = Day(day=bday)
            for window in hall.windows.values():
                window.serving = window.serving_since = None
                window.last_call = window.last_ticket = None
            for door in hall.doors.values():
                door.new_day()
        return hall.today


_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        zone = _ZONES[name] = ZoneInfo(name)
    return zone


def _apply_complaint(hall: Hall, ev: ComplaintEvent) -> None:
    hall.complaints.setdefault(
        ev.complaint_id, Complaint(ev.severity, ev.channel, ev.ts, ev.received_by)
    )


def _apply_device(hall: Hall, ev: DeviceEvent) -> None:
    dev = hall.devices.get(ev.device)
    if dev is None:
        hall.devices[ev.device] = Device(ev.state, ev.kind, ev.ts, ev.ts)
        return
    if ev.state != dev.state:
        dev.since = ev.ts
    dev.state, dev.kind, dev.last_seen = ev.state, ev.kind, ev.ts


def _apply_system(hall: Hall, ev: SystemEvent) -> None:
    sys_ = hall.systems.get(ev.system)
    if sys_ is None:
        hall.systems[ev.system] = System(ev.state, ev.ts, ev.detail, ev.ts)
        return
    if ev.state != sys_.state:
        sys_.since = ev.ts
    sys_.state, sys_.detail, sys_.last_seen = ev.state, ev.detail, ev.ts


def _report(ev: WindowEvent) -> tuple[float, str, list[str], bool]:
    """A window report's rank: newest first; two of the same instant in a fixed order."""
    return (ev.ts, ev.state, list(dict.fromkeys(ev.services)), ev.emergency)


def _apply_window(hall: Hall, ev: WindowEvent) -> None:
    win = hall.windows.get(ev.window)
    if win is None:
        win = hall.windows[ev.window] = Window()
    win.state, win.services, win.emergency, win.since = (
        ev.state,
        list(dict.fromkeys(ev.services)),
        ev.emergency,
        ev.ts,
    )


def _apply_door(hall: Hall, day: Day | None, ev: DoorEvent) -> None:
    door = hall.doors.get(ev.door)
    r = (ev.ts, ev.in_total, ev.out_total)
    if day is None:
        # Yesterday's reading, late: a better baseline for today's first reading than an older
        # one, as long as the door has none of today's yet; it moves no one in or out.
        if door is None:
            hall.doors[ev.door] = Door(base=r)
        elif not door.readings and (door.base is None or door.base[0] < ev.ts):
            door.base = r
        return
    if door is None:
        door = hall.doors[ev.door] = Door()
    latest, prev = newest(hall.doors), door.last()
    if door.add(r) and (latest is None or ev.ts > latest):
        h = Headcount(day.occupancy, day.peak_occupancy, day.peak_occupancy_at)
        step(h, door, prev, r)  # the usual case: the newest reading of all, one step more
    else:
        h = refold(hall.doors)  # a late one: the day's readings in time order again
    day.occupancy, day.peak_occupancy, day.peak_occupancy_at = h.occupancy, h.peak, h.peak_at


def _apply_ticket(hall: Hall, day: Day, ev: TicketEvent) -> None:
    """The ticket as the set of its events makes it; the day's counters move by the change."""
    if ev.type == "called" and ev.window and ev.window not in hall.windows:
        # A window we have not heard from yet is evidently open (whether or not the call takes
        # effect); any report of its own, however old, says more: `since` 0, none is outdated.
        hall.windows[ev.window] = Window(state="open", since=0.0)
    old = day.tickets.get(ev.ticket)
    before, after = add(old, mark(ev.type, ev.ts, ev.service, ev.window, ev.priority))
    day.tickets[ev.ticket] = after.ticket
    b = before or Fold(after.ticket)
    day.issued += after.issued - b.issued
    day.called += after.called - b.called
    day.completed += after.completed - b.completed
    day.no_show += after.no_show - b.no_show
    day.cancelled += after.cancelled - b.cancelled
    day.transferred += after.transferred - b.transferred
    if after.wait_us != b.wait_us:
        day.wait_total_us += after.wait_us - b.wait_us
        day.wait_total_s = day.wait_total_us / 1_000_000
    serve(hall.windows, day.tickets, ev.ticket, b, after)


def waiting_tickets(day: Day) -> list[tuple[str, Ticket]]:
    """Tickets still in the queue, in calling order (class rank, then first in)."""
    items = [(k, t) for k, t in day.tickets.items() if t.status == WAITING and t.service]
    items.sort(key=lambda kt: (PRIORITY_RANK.get(kt[1].priority, 2), kt[1].issued_at or 0.0))
    return items


def waiting_counts(day: Day) -> dict[tuple[str, str], int]:
    """Waiting tickets per (service, priority)."""
    out: dict[tuple[str, str], int] = {}
    for t in day.tickets.values():
        if t.status == WAITING and t.service:
            key = (t.service, t.priority)
            out[key] = out.get(key, 0) + 1
    return out


def encode(state: HallsState) -> bytes:
    return msgspec.json.encode({"version": SNAPSHOT_VERSION, "state": state})


def decode(blob: bytes) -> HallsState | None:
    """A snapshot back into state; None when it was written by another snapshot version."""
    try:
        raw = msgspec.json.decode(blob, type=_Envelope)
    except msgspec.DecodeError:
        return None
    if raw.version != SNAPSHOT_VERSION:
        return None
    _share(raw.state)
    return raw.state


def _share(state: HallsState) -> None:
    """Decoded tickets each hold their own copy of every name and status: intern them as the
    live path does (sensors.parse), and let an unchanged `first_issued_at` be `issued_at`."""
    for hall in state.halls.values():
        day = hall.today
        if day is None:
            continue
        for t in day.tickets.values():
            t.status = intern(t.status)
            t.priority = intern(t.priority)
            if t.service is not None:
                t.service = intern(t.service)
            if t.window is not None:
                t.window = intern(t.window)
            if t.log is not None:
                t.log = [(ts, k, intern(a), intern(p)) for ts, k, a, p in t.log]
            if t.first_issued_at == t.issued_at:
                t.first_issued_at = t.issued_at


class _Envelope(msgspec.Struct):
    version: int
    state: HallsState
