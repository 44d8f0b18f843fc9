"""One hall's business day replayed through the daemon's core, and the records it yields."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from hallwatch.alerts.rules import RuleEngine
from hallwatch.alerts.view import HallView, Transition
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.estimate.advice import Advice
from hallwatch.daemon.estimate.model import ErrorOut, Estimator
from hallwatch.daemon.pipeline.process import offline
from hallwatch.daemon.pipeline.views import SETTLE_S, all_views
from hallwatch.daemon.reports.inputs import ReportSettings
from hallwatch.sensors.events import (
    ComplaintEvent,
    DeviceEvent,
    Event,
    Rejection,
    SystemEvent,
    TicketEvent,
    WindowEvent,
)
from hallwatch.sensors.parse import parse

SAMPLE_EVERY_S = 60.0  # resolution of the day charts


# -- one replayed hall-day --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Visit:
    """One queue visit of a ticket (a transfer starts a new one), as the core saw it."""

    hall: str
    ticket: str
    service: str
    priority: str
    issued_at: float
    called_at: float | None
    outcome: str  # completed | no_show | cancelled | called | waiting
    leg: int = 0  # 0: from the ticket machine, 1, 2, ...: after a transfer

    @property
    def wait_s(self) -> float | None:
        return None if self.called_at is None else max(0.0, self.called_at - self.issued_at)


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    headcount: int
    max_wait_s: float | None  # the longest estimated wait of a new normal ticket
    waiting: int
    emergency_open: int


@dataclass(frozen=True, slots=True)
class EmergencyWindow:
    hall: str
    window: str
    opened_at: float
    closed_at: float | None


@dataclass(slots=True)
class PeakEpisode:
    """One queue_peak alert episode: the plan's peak procedure from trigger to clear."""

    hall: str
    alert_id: str
    started_at: float  # when the condition began
    fired_at: float  # when the plan was triggered (the alert fired)
    level: int
    escalations: list[tuple[float, int]] = field(default_factory=list)
    resolved_at: float | None = None
    reason: str = ""
    peak_headcount: int = 0
    peak_wait_s: float | None = None
    peak_wait_service: str | None = None
    emergency_at_start: int = 0
    emergency_opened: list[tuple[str, float]] = field(default_factory=list)
    wait_over_target: bool = False
    back_under_at: float | None = None
    actual_max_wait_s: float | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    relapses: int = 0  # came back within relapse_s of clearing: one episode, not two

    @property
    def duration_s(self) -> float | None:
        return None if self.resolved_at is None else self.resolved_at - self.fired_at

    @property
    def ack_s(self) -> float | None:
        return None if self.acked_at is None else max(0.0, self.acked_at - self.fired_at)

    @property
    def back_under_s(self) -> float | None:
        """From the trigger until the estimated wait was back under the target for good."""
        if not self.wait_over_target or self.back_under_at is None:
            return None
        return self.back_under_at - self.fired_at


@dataclass(slots=True)
class HallDay:
    hall: str
    day: date
    working_day: bool
    visits: list[Visit] = field(default_factory=list)
    errors: list[ErrorOut] = field(default_factory=list)
    peaks: list[PeakEpisode] = field(default_factory=list)
    emergency: list[EmergencyWindow] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    peak_headcount: int = 0
    systems: list[SystemEvent] = field(default_factory=list)
    devices: list[DeviceEvent] = field(default_factory=list)
    complaints: list[ComplaintEvent] = field(default_factory=list)
    first_ts: float = 0.0
    last_ts: float = 0.0


def replay_hall_day(
    hall: str, day: date, messages: Iterable[tuple[str, bytes]], settings: ReportSettings
) -> HallDay:
    """Replay one hall's business day through the daemon's core, collecting the figures."""
    replay = _DayReplay(hall, day, settings)
    for topic, payload in messages:
        event = parse(topic, payload, settings.root)
        if not isinstance(event, Rejection) and event.hall == hall:
            replay.feed(event)
    return replay.finish()


class _DayReplay:
    """The state of one hall-day replay: the core it drives and the figures it collects."""

    def __init__(self, hall: str, day: date, settings: ReportSettings) -> None:
        s = self.settings = settings
        self.hall = hall
        self.state = HallsState(tz=s.tz)
        closing = s.rules.for_hall(hall).close.strftime("%H:%M")  # the hall's own ([hours])
        self.est = Estimator(tz=s.tz, target_wait_s=s.target_wait_s, closing=closing)
        self.step = offline(self.state, self.est)  # a refused event never reaches `est`
        self.engine = RuleEngine(s.rules)
        self.out = HallDay(hall, day, s.calendar.is_working_day(day))
        self.seen: set[str] = set()
        self.advice: dict[str, tuple[float, Advice]] = {}
        self.open_peak: PeakEpisode | None = None
        self.open_emergency: dict[str, EmergencyWindow] = {}
        self.next_tick: float | None = None
        self.next_sample = -math.inf
        self.cur: dict[str, _Leg] = {}
        self.legs: list[_Leg] = []
        self.rules = s.rules.for_hall(hall)
        self.zone = s.zone
        self.now = 0.0

    # -- the daemon's ticks ---------------------------------------------------------------------

    def advise(self, name: str) -> Advice | None:
        """The estimator's advice as the daemon caches it, in opening hours only."""
        local = datetime.fromtimestamp(self.now, self.zone).time()
        if not (self.out.working_day and self.rules.open <= local < self.rules.close):
            return None  # the peak rule only looks in opening hours
        hit = self.advice.get(name)
        if hit is None or self.now - hit[0] >= self.settings.advice_every_s:
            hit = self.advice[name] = (self.now, self.est.advice(self.state, name, self.now))
        return hit[1]

    def tick(self) -> None:
        """One tick of the daemon at `next_tick`: every hall view through the rules."""
        assert self.next_tick is not None
        s = self.settings
        self.now = self.next_tick
        for view in all_views(self.state, self.now, self.advise, s.heartbeat_timeout_s, s.calendar):
            self.look(view)
        self.next_tick += s.tick_s

    def look(self, view: HallView) -> None:
        """Sample the view for the day charts, evaluate the rules, follow the open peak."""
        wait = max((w for w in view.est_wait_s_by_service.values() if w is not None), default=None)
        if view.now >= self.next_sample:
            self.out.samples.append(
                Sample(
                    view.now,
                    view.headcount,
                    wait,
                    sum(view.waiting_by_service.values()),
                    view.emergency_windows_open,
                )
            )
            self.next_sample = view.now + SAMPLE_EVERY_S
        for t in self.engine.evaluate(view):
            if t.state != "repeat":
                self.out.transitions.append(t)
                if t.alert == "queue_peak":
                    self.on_peak(t, view)
        if self.open_peak is not None:
            self.follow_peak(self.open_peak, view, wait)

    def on_peak(self, t: Transition, view: HallView) -> None:
        """A queue_peak transition opens, escalates or closes the peak episode."""
        if t.state == "firing":
            self.open_peak = PeakEpisode(
                self.hall, t.alert_id, t.started_at, t.at, t.level,
                emergency_at_start=view.emergency_windows_open,
            )  # fmt: skip
            self.out.peaks.append(self.open_peak)
            return
        if t.state == "relapsed":
            # The same episode again, within relapse_s of its clear: it did not end there.
            again = next((q for q in reversed(self.out.peaks) if q.alert_id == t.alert_id), None)
            if again is not None:
                again.resolved_at, again.reason = None, ""
                again.relapses += 1
                self.open_peak = again
            return
        p = self.open_peak
        if p is not None and t.state == "escalated":
            p.escalations.append((t.at, t.level))
            p.level = max(p.level, t.level)
        elif p is not None and t.state == "resolved":
            p.resolved_at, p.reason = t.at, t.reason
            if t.peak is not None:
                p.peak_headcount = t.peak.headcount
                p.peak_wait_s = t.peak.max_wait_s
                p.peak_wait_service = t.peak.max_wait_service
            self.open_peak = None

    def follow_peak(self, p: PeakEpisode, view: HallView, wait: float | None) -> None:
        """The open episode's peak headcount and wait, and when the wait was back under target."""
        p.peak_headcount = max(p.peak_headcount, view.headcount)
        if wait is not None and (p.peak_wait_s is None or wait > p.peak_wait_s):
            p.peak_wait_s = wait
        if wait is not None and wait >= self.settings.target_wait_s:
            p.wait_over_target, p.back_under_at = True, None
        elif p.wait_over_target and p.back_under_at is None:
            p.back_under_at = view.now

    # -- the day's events -----------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        """One of the hall's events: the ticks before it, then the core, then the records."""
        key = f"{event.hall}/{event.id}"
        if key in self.seen:
            return
        self.seen.add(key)
        if self.next_tick is None:
            self.next_tick = self.out.first_ts = event.ts
        self.out.last_ts = max(self.out.last_ts, event.ts)
        while self.next_tick <= event.ts:
            self.tick()
        outs = self.step(event)
        if isinstance(event, TicketEvent):
            _track(self.state, event, self.cur, self.legs)
        self.out.errors.extend(o for o in outs if isinstance(o, ErrorOut))
        self.record(event)

    def record(self, event: Event) -> None:
        """Keep the events the period's figures read; follow the emergency windows."""
        out = self.out
        if isinstance(event, SystemEvent):
            out.systems.append(event)
        elif isinstance(event, DeviceEvent):
            out.devices.append(event)
        elif isinstance(event, ComplaintEvent):
            out.complaints.append(event)
        elif isinstance(event, WindowEvent) and event.emergency:
            self.on_emergency(event)

    def on_emergency(self, event: WindowEvent) -> None:
        """An emergency window opened (during a peak: noted on it) or closed."""
        out = self.out
        w = self.open_emergency.get(event.window)
        if event.state == "open" and w is None:
            w = self.open_emergency[event.window] = EmergencyWindow(
                self.hall, event.window, event.ts, None
            )
            out.emergency.append(w)
            if self.open_peak is not None:
                self.open_peak.emergency_opened.append((event.window, event.ts))
        elif event.state != "open" and w is not None:
            del self.open_emergency[event.window]
            i = out.emergency.index(w)
            out.emergency[i] = EmergencyWindow(self.hall, w.window, w.opened_at, event.ts)

    # -- the end of the day ---------------------------------------------------------------------

    def finish(self) -> HallDay:
        """Let the rules settle, then the day's headcount, visits and each peak's actual wait."""
        if self.next_tick is not None:
            for _ in range(int(SETTLE_S / self.settings.tick_s)):
                self.tick()
        out = self.out
        h = self.state.halls.get(self.hall)
        if h is not None and h.today is not None and h.today.day == out.day:
            out.peak_headcount = h.today.peak_occupancy
        out.visits = [v.frozen() for v in self.legs]
        for p in out.peaks:
            end = p.resolved_at if p.resolved_at is not None else math.inf
            waits = [
                v.wait_s
                for v in out.visits
                if v.wait_s is not None and p.started_at <= v.issued_at < end
            ]
            p.actual_max_wait_s = max(waits, default=None)
        return out


@dataclass(slots=True)
class _Leg:
    hall: str
    ticket: str
    service: str
    priority: str
    issued_at: float
    called_at: float | None = None
    outcome: str = "waiting"
    leg: int = 0

    def frozen(self) -> Visit:
        return Visit(
            self.hall,
            self.ticket,
            self.service,
            self.priority,
            self.issued_at,
            self.called_at,
            self.outcome,
            self.leg,
        )


def _track(state: HallsState, ev: TicketEvent, cur: dict[str, _Leg], legs: list[_Leg]) -> None:
    """Follow a ticket's visits: a transfer (a new `issued_at`) starts a new one."""
    h = state.halls.get(ev.hall)
    t = h.today.tickets.get(ev.ticket) if h is not None and h.today is not None else None
    if t is None or t.issued_at is None or t.service is None:
        return
    leg = cur.get(ev.ticket)
    if leg is None or leg.issued_at != t.issued_at:
        n = 0 if leg is None else leg.leg + 1
        leg = cur[ev.ticket] = _Leg(ev.hall, ev.ticket, t.service, t.priority, t.issued_at, leg=n)
        legs.append(leg)
    leg.service, leg.priority, leg.called_at = t.service, t.priority, t.called_at
    leg.outcome = t.status


@dataclass(frozen=True, slots=True)
class Stored:
    """One stored event as read from the `events` table (in `seq` order)."""

    hall: str
    topic: str
    ts: float
    payload: bytes


def hall_days(events: Iterable[Stored], tz: str) -> dict[tuple[str, date], list[tuple[str, bytes]]]:
    """Events grouped by hall and business day of their event time, arrival order kept."""
    zone = ZoneInfo(tz)
    out: dict[tuple[str, date], list[tuple[str, bytes]]] = defaultdict(list)
    for e in events:
        out[(e.hall, datetime.fromtimestamp(e.ts, zone).date())].append((e.topic, e.payload))
    return dict(sorted(out.items()))
