"""Figures for the centre's reports (plan §5: appraisal, archive, failing devices), from events.

The event store is the truth: every figure is recomputed by replaying the stored events of each
hall and business day through the same core as the daemon (parser -> `HallsState` ->
`Estimator`, hall views at every tick -> the alert `RuleEngine`). A hall-day is replayed on its
own, with a fresh state and a cold estimator, so a day's figures do not depend on the period or
the halls asked for: a weekly and a monthly report agree on every day they share.

Pure: messages, settings and the workflow records (complaint handling, outage call-backs,
acknowledgements, read by `hallwatch.daemon.reports.cli`) go in; plain frozen data comes out, for
`hallwatch.daemon.reports.html` to lay out. Nothing here reads a clock, a file or the environment.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hallwatch.alerts.rules import RuleEngine
from hallwatch.alerts.view import HallView, Transition
from hallwatch.daemon.config.alerts import RuleSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.estimate.model import Advice, ErrorOut, Estimator
from hallwatch.daemon.pipeline.process import offline
from hallwatch.daemon.pipeline.views import all_views
from hallwatch.sensors.events import (
    ComplaintEvent,
    DeviceEvent,
    Rejection,
    SystemEvent,
    TicketEvent,
    WindowEvent,
)
from hallwatch.sensors.parse import parse

# The estimator's advice (a forward simulation per service) is most of a replay's cost; the
# live daemon refreshes it every tick, `hallwatch replay` every 30 s, a report every minute:
# reports speak in minutes.
ADVICE_EVERY_S = 60.0
SAMPLE_EVERY_S = 60.0  # resolution of the day charts
SETTLE_S = 300.0  # looks after a day's last event, so rules waiting on a `for` can settle
ANSWER_WORKING_DAYS = 2  # plan §4.2: answer a complaint within 2 working days
SYSTEM_ALERTS = ("system_outage", "system_down")  # the rule's name, now and before


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """What a report needs of the daemon's settings; `from_settings` builds it."""

    tz: str = "Asia/Shanghai"
    root: str = "hall"
    heartbeat_timeout_s: float = 90.0
    target_wait_s: float = 1200.0  # the plan's 20 minutes
    closing: str = "17:00"
    rules: RuleSettings = field(default_factory=RuleSettings)
    calendar: WorkCalendar = field(default_factory=WorkCalendar)
    tick_s: float = 10.0
    advice_every_s: float = ADVICE_EVERY_S
    min_hour_samples: int = 3  # an hour needs this many waits to be called the quietest

    @classmethod
    def from_settings(cls, s: Settings, **kw: float) -> ReportSettings:
        return cls(
            tz=s.hall.timezone,
            root=s.mqtt.topic_root,
            heartbeat_timeout_s=s.hall.heartbeat_timeout_s,
            target_wait_s=s.hall.target_wait_s,
            closing=s.hall.closing,
            rules=s.alerts.rules,
            calendar=s.calendar.calendar(),
            **kw,  # type: ignore[arg-type]
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def hall_name(self, hall: str) -> str:
        return self.rules.for_hall(hall).name or hall


@dataclass(frozen=True, slots=True)
class Period:
    """Business days `start` to `end`, both included, in the hall time zone."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period: --to {self.end} is before --from {self.start}")

    def bounds(self, tz: str) -> tuple[float, float]:
        """[first second, first second after) in epoch seconds."""
        zone = ZoneInfo(tz)
        lo = datetime.combine(self.start, time(0), zone).timestamp()
        hi = datetime.combine(self.end + timedelta(days=1), time(0), zone).timestamp()
        return lo, hi

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


# -- what the workflow tables give (complaint handling, call-backs, acknowledgements) --------


@dataclass(frozen=True, slots=True)
class ComplaintRecord:
    """How a complaint was handled (plan §4.2), from the complaint workflow."""

    hall: str
    complaint_id: str
    answered_at: float | None = None
    escalated: bool = False
    followup_at: float | None = None
    responsible: str | None = None  # when handed on; else the person who received it


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    """A customer put on the outage call-back list (plan §4.3) and whether they were told."""

    hall: str
    registered_at: float
    notified_at: float | None = None
    systems: tuple[str, ...] = ()  # the systems down when registered; () when not known


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledgement of an alert episode, as the alert service stored it."""

    hall: str
    alert: str
    subject: str
    since: float  # the episode's start (Episode.since)
    acked_at: float
    acked_by: str


@dataclass(frozen=True, slots=True)
class Workflow:
    """Records beside the events; None means the table is not there (shown as "—")."""

    complaints: Sequence[ComplaintRecord] | None = None
    callbacks: Sequence[CallbackRecord] | None = None
    acks: Sequence[Ack] = ()


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
    s = settings
    state = HallsState(tz=s.tz)
    est = Estimator(tz=s.tz, target_wait_s=s.target_wait_s, closing=s.closing)
    step = offline(state, est)  # the daemon's pipeline: a refused event never reaches `est`
    engine = RuleEngine(s.rules)
    out = HallDay(hall, day, s.calendar.is_working_day(day))
    seen: set[str] = set()
    advice: dict[str, tuple[float, Advice]] = {}
    open_peak: PeakEpisode | None = None
    open_emergency: dict[str, EmergencyWindow] = {}
    next_tick: float | None = None
    next_sample = -math.inf
    cur: dict[str, _Leg] = {}
    legs: list[_Leg] = []

    rules = s.rules.for_hall(hall)
    zone = s.zone

    def advise(name: str) -> Advice | None:
        local = datetime.fromtimestamp(now, zone).time()
        if not (out.working_day and rules.open <= local < rules.close):
            return None  # the peak rule only looks in opening hours
        hit = advice.get(name)
        if hit is None or now - hit[0] >= s.advice_every_s:
            hit = advice[name] = (now, est.advice(state, name, now))
        return hit[1]

    def look(view: HallView) -> None:
        nonlocal open_peak, next_sample
        wait = max((w for w in view.est_wait_s_by_service.values() if w is not None), default=None)
        if view.now >= next_sample:
            out.samples.append(
                Sample(
                    view.now,
                    view.headcount,
                    wait,
                    sum(view.waiting_by_service.values()),
                    view.emergency_windows_open,
                )
            )
            next_sample = view.now + SAMPLE_EVERY_S
        for t in engine.evaluate(view):
            if t.state == "repeat":
                continue
            out.transitions.append(t)
            if t.alert != "queue_peak":
                continue
            if t.state == "firing":
                open_peak = PeakEpisode(
                    hall, t.alert_id, t.started_at, t.at, t.level,
                    emergency_at_start=view.emergency_windows_open,
                )  # fmt: skip
                out.peaks.append(open_peak)
            elif open_peak is not None and t.state == "escalated":
                open_peak.escalations.append((t.at, t.level))
                open_peak.level = max(open_peak.level, t.level)
            elif open_peak is not None and t.state == "resolved":
                open_peak.resolved_at, open_peak.reason = t.at, t.reason
                if t.peak is not None:
                    open_peak.peak_headcount = t.peak.headcount
                    open_peak.peak_wait_s = t.peak.max_wait_s
                    open_peak.peak_wait_service = t.peak.max_wait_service
                open_peak = None
        if open_peak is not None:
            p = open_peak
            p.peak_headcount = max(p.peak_headcount, view.headcount)
            if wait is not None and (p.peak_wait_s is None or wait > p.peak_wait_s):
                p.peak_wait_s = wait
            if wait is not None and wait >= s.target_wait_s:
                p.wait_over_target, p.back_under_at = True, None
            elif p.wait_over_target and p.back_under_at is None:
                p.back_under_at = view.now

    now = 0.0
    for topic, payload in messages:
        event = parse(topic, payload, s.root)
        if isinstance(event, Rejection) or event.hall != hall:
            continue
        key = f"{event.hall}/{event.id}"
        if key in seen:
            continue
        seen.add(key)
        if next_tick is None:
            next_tick = out.first_ts = event.ts
        out.last_ts = max(out.last_ts, event.ts)
        while next_tick <= event.ts:
            now = next_tick
            for view in all_views(state, now, advise, s.heartbeat_timeout_s, s.calendar):
                look(view)
            next_tick += s.tick_s
        outs = step(event)
        if isinstance(event, TicketEvent):
            _track(state, event, cur, legs)
        for o in outs:
            if isinstance(o, ErrorOut):
                out.errors.append(o)
        if isinstance(event, SystemEvent):
            out.systems.append(event)
        elif isinstance(event, DeviceEvent):
            out.devices.append(event)
        elif isinstance(event, ComplaintEvent):
            out.complaints.append(event)
        elif isinstance(event, WindowEvent) and event.emergency:
            w = open_emergency.get(event.window)
            if event.state == "open" and w is None:
                w = open_emergency[event.window] = EmergencyWindow(
                    hall, event.window, event.ts, None
                )
                out.emergency.append(w)
                if open_peak is not None:
                    open_peak.emergency_opened.append((event.window, event.ts))
            elif event.state != "open" and w is not None:
                del open_emergency[event.window]
                i = out.emergency.index(w)
                out.emergency[i] = EmergencyWindow(hall, w.window, w.opened_at, event.ts)
    if next_tick is not None:
        for _ in range(int(SETTLE_S / s.tick_s)):
            now = next_tick
            for view in all_views(state, now, advise, s.heartbeat_timeout_s, s.calendar):
                look(view)
            next_tick += s.tick_s
    h = state.halls.get(hall)
    if h is not None and h.today is not None and h.today.day == day:
        out.peak_headcount = h.today.peak_occupancy
    out.visits = [v.frozen() for v in legs]
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


# -- the period: grouping, outages, devices, complaints, service -------------------------------


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


@dataclass(frozen=True, slots=True)
class Outage:
    """An information system not `up` (plan §4.3), from its own reports."""

    hall: str
    system: str
    start: float
    end: float | None  # None: not back up by the end of the data
    state: str  # the worst reported: down | degraded
    detail: str
    tickets_issued: int  # customers who took a ticket meanwhile
    alert_level: int  # 0: no system_down alert fired, 2: escalated (at the half hour)
    callbacks: int | None  # put on the call-back list; None: no register
    notified: int | None

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else self.end - self.start


def outages(days: Sequence[HallDay], workflow: Workflow) -> list[Outage]:
    by_system: dict[tuple[str, str], list[SystemEvent]] = defaultdict(list)
    for d in days:
        for ev in d.systems:
            by_system[(ev.hall, ev.system)].append(ev)
    found: list[Outage] = []
    for (hall, system), evs in sorted(by_system.items()):
        start: float | None = None
        worst, detail = "up", ""
        for ev in sorted(evs, key=lambda e: e.ts):
            if ev.state != "up":
                if start is None:
                    start, worst, detail = ev.ts, ev.state, ev.detail or ""
                elif ev.state == "down":
                    worst = "down"
                detail = detail or ev.detail or ""
            elif start is not None:
                found.append(_outage(hall, system, start, ev.ts, worst, detail, days, workflow))
                start = None
        if start is not None:
            found.append(_outage(hall, system, start, None, worst, detail, days, workflow))
    return sorted(found, key=lambda o: (o.start, o.hall, o.system))


def _outage(
    hall: str,
    system: str,
    start: float,
    end: float | None,
    state: str,
    detail: str,
    days: Sequence[HallDay],
    workflow: Workflow,
) -> Outage:
    stop = math.inf if end is None else end
    issued = sum(
        1
        for d in days
        if d.hall == hall
        for v in d.visits
        if start <= v.issued_at < stop and v.leg == 0
    )
    level = max(
        (
            t.level
            for d in days
            if d.hall == hall
            for t in d.transitions
            if t.alert in SYSTEM_ALERTS and t.subject == system and start <= t.at <= stop
        ),
        default=0,
    )
    callbacks = notified = None
    if workflow.callbacks is not None:
        mine = [
            c
            for c in workflow.callbacks
            if c.hall == hall
            and (not c.systems or system in c.systems)
            and start <= c.registered_at < stop
        ]
        callbacks, notified = len(mine), sum(1 for c in mine if c.notified_at is not None)
    return Outage(hall, system, start, end, state, detail, issued, level, callbacks, notified)


@dataclass(frozen=True, slots=True)
class DeviceDown:
    """A device offline (said so, or silent past the heartbeat timeout) in opening hours."""

    hall: str
    device: str
    kind: str
    start: float
    end: float | None  # None: still down at the end of the data
    downtime_s: float  # the part in opening hours on working days


@dataclass(frozen=True, slots=True)
class DeviceRank:
    hall: str
    device: str
    kind: str
    failures: int
    downtime_s: float
    longest_s: float


def device_downtime(days: Sequence[HallDay], settings: ReportSettings) -> list[DeviceDown]:
    """Offline episodes of every device, each counted once even across days."""
    by_device: dict[tuple[str, str], list[DeviceEvent]] = defaultdict(list)
    horizon: dict[str, float] = {}
    for d in days:
        horizon[d.hall] = max(horizon.get(d.hall, 0.0), d.last_ts)
        for ev in d.devices:
            by_device[(ev.hall, ev.device)].append(ev)
    out: list[DeviceDown] = []
    timeout = settings.heartbeat_timeout_s
    for (hall, device), evs in sorted(by_device.items()):
        evs.sort(key=lambda e: e.ts)
        spans: list[tuple[float, float | None]] = []
        down_since: float | None = None
        for prev, ev in zip([None, *evs], evs, strict=False):
            if prev is not None and prev.state == "online" and ev.ts - prev.ts > timeout:
                spans.append((prev.ts + timeout, ev.ts))  # silent: no heartbeat
            if ev.state == "offline" and down_since is None:
                down_since = ev.ts
            elif ev.state == "online" and down_since is not None:
                spans.append((down_since, ev.ts))
                down_since = None
        last = evs[-1]
        end = horizon[hall]
        if down_since is not None:
            spans.append((down_since, None))
        elif last.state == "online" and end - last.ts > timeout:
            spans.append((last.ts + timeout, None))
        # A device silent for a whole business day was out of service (switched off, a spare
        # window's terminal), not failing: only the days it reported on count.
        used = {datetime.fromtimestamp(e.ts, settings.zone).date() for e in evs}
        for start, stop in _merge(spans):
            open_s = _opening_seconds(hall, start, end if stop is None else stop, used, settings)
            if open_s > 0:
                out.append(DeviceDown(hall, device, last.kind, start, stop, open_s))
    return out


def _merge(spans: list[tuple[float, float | None]]) -> list[tuple[float, float | None]]:
    merged: list[tuple[float, float | None]] = []
    for start, stop in sorted(spans, key=lambda s: s[0]):
        if merged:
            s0, e0 = merged[-1]
            if e0 is None or start <= e0:
                merged[-1] = (s0, None if e0 is None or stop is None else max(e0, stop))
                continue
        merged.append((start, stop))
    return merged


def _opening_seconds(
    hall: str, start: float, stop: float, used: set[date], s: ReportSettings
) -> float:
    """Seconds of [start, stop) inside the hall's opening hours on the working `used` days."""
    rules = s.rules.for_hall(hall)
    zone = s.zone
    day = datetime.fromtimestamp(start, zone).date()
    last = datetime.fromtimestamp(stop, zone).date()
    total = 0.0
    while day <= last:
        if day in used and s.calendar.is_working_day(day):
            lo = datetime.combine(day, rules.open, zone).timestamp()
            hi = datetime.combine(day, rules.close, zone).timestamp()
            total += max(0.0, min(hi, stop) - max(lo, start))
        day += timedelta(days=1)
    return total


def device_ranking(downs: Sequence[DeviceDown]) -> list[DeviceRank]:
    """Devices by failure count, then downtime: the plan's 故障率高的设备 come first."""
    acc: dict[tuple[str, str], list[DeviceDown]] = defaultdict(list)
    for d in downs:
        acc[(d.hall, d.device)].append(d)
    ranks = [
        DeviceRank(
            hall,
            device,
            ds[0].kind,
            len(ds),
            sum(d.downtime_s for d in ds),
            max(d.downtime_s for d in ds),
        )
        for (hall, device), ds in acc.items()
    ]
    return sorted(ranks, key=lambda r: (-r.failures, -r.downtime_s, r.hall, r.device))


@dataclass(frozen=True, slots=True)
class Complaint:
    hall: str
    complaint_id: str
    received_at: float
    channel: str
    severity: str
    summary: str
    received_by: str
    due: date  # answer by the end of this day: 2 working days after receipt
    responsible: str
    answered_at: float | None
    in_time: bool | None  # None: no handling record
    escalated: bool | None
    followup_done: bool | None


def complaints(
    days: Sequence[HallDay], settings: ReportSettings, workflow: Workflow
) -> list[Complaint]:
    zone = settings.zone
    records = {(r.hall, r.complaint_id): r for r in workflow.complaints or ()}
    seen: set[tuple[str, str]] = set()
    out: list[Complaint] = []
    for d in days:
        for ev in d.complaints:
            if (ev.hall, ev.complaint_id) in seen:
                continue
            seen.add((ev.hall, ev.complaint_id))
            received = datetime.fromtimestamp(ev.ts, zone).date()
            due = settings.calendar.working_days_after(received, ANSWER_WORKING_DAYS)
            rec = records.get((ev.hall, ev.complaint_id))
            known = workflow.complaints is not None
            answered = rec.answered_at if rec else None
            in_time = (
                None
                if not known
                else answered is not None and datetime.fromtimestamp(answered, zone).date() <= due
            )
            out.append(
                Complaint(
                    ev.hall,
                    ev.complaint_id,
                    ev.ts,
                    ev.channel,
                    ev.severity,
                    ev.summary,
                    ev.received_by,
                    due,
                    (rec.responsible if rec and rec.responsible else ev.received_by),
                    answered,
                    in_time,
                    (rec.escalated if rec else False) if known else None,
                    (rec is not None and rec.followup_at is not None) if known else None,
                )
            )
    return sorted(out, key=lambda c: (c.received_at, c.hall, c.complaint_id))


@dataclass(frozen=True, slots=True)
class ComplaintTally:
    key: str  # hall or person
    received: int
    serious: int
    in_time: int | None
    late_or_open: int | None
    escalated: int | None
    followup_done: int | None


def tally(items: Sequence[Complaint], key: str) -> list[ComplaintTally]:
    """Complaints counted by `key` ("hall" or "responsible")."""
    groups: dict[str, list[Complaint]] = defaultdict(list)
    for c in items:
        groups[getattr(c, key)].append(c)

    def count(cs: list[Complaint], attr: str, want: bool = True) -> int | None:
        vals = [getattr(c, attr) for c in cs]
        return None if any(v is None for v in vals) else sum(1 for v in vals if v is want)

    return [
        ComplaintTally(
            k,
            len(cs),
            sum(1 for c in cs if c.severity == "serious"),
            count(cs, "in_time"),
            count(cs, "in_time", False),
            count(cs, "escalated"),
            count(cs, "followup_done"),
        )
        for k, cs in sorted(groups.items())
    ]


@dataclass(frozen=True, slots=True)
class WaitStats:
    """Waits from issue (or transfer) to call, in seconds."""

    n: int
    median_s: float | None
    p90_s: float | None
    over_share: float | None  # share at or over the target (the plan's 20 minutes)
    mean_s: float | None


def wait_stats(waits: Iterable[float], target_s: float) -> WaitStats:
    xs = sorted(waits)
    if not xs:
        return WaitStats(0, None, None, None, None)
    return WaitStats(
        len(xs),
        statistics.median(xs),
        nearest_rank(xs, 0.9),
        sum(1 for w in xs if w >= target_s) / len(xs),
        statistics.fmean(xs),
    )


def nearest_rank(sorted_xs: Sequence[float], q: float) -> float:
    """The smallest value with at least a share `q` of the values at or below it."""
    return sorted_xs[max(0, math.ceil(q * len(sorted_xs)) - 1)]


@dataclass(frozen=True, slots=True)
class Accuracy:
    n: int
    mae_s: float | None
    bias_s: float | None  # mean of estimate - actual: > 0 means we said longer than it was
    within_5min: float | None


def accuracy(errors: Iterable[ErrorOut]) -> Accuracy:
    errs = [e.estimated_wait_s - e.actual_wait_s for e in errors]
    if not errs:
        return Accuracy(0, None, None, None)
    return Accuracy(
        len(errs),
        statistics.fmean(abs(e) for e in errs),
        statistics.fmean(errs),
        sum(1 for e in errs if abs(e) <= 300) / len(errs),
    )


@dataclass(frozen=True, slots=True)
class HourRow:
    hour: int
    issued_per_day: float
    waits: WaitStats
    tag: str  # "busiest" | "quietest" | ""


@dataclass(frozen=True, slots=True)
class HallSummary:
    hall: str
    name: str
    days: int
    issued: int
    served: int  # completed
    no_show: int
    cancelled: int
    waits: WaitStats
    accuracy: Accuracy
    peak_episodes: int
    peak_headcount: int
    outages: int
    complaints: int
    device_failures: int


@dataclass(frozen=True, slots=True)
class Report:
    period: Period
    hall_filter: str | None
    generated_at: float
    settings: ReportSettings
    days: tuple[HallDay, ...]
    summaries: tuple[HallSummary, ...]
    peaks: tuple[PeakEpisode, ...]
    emergency: tuple[EmergencyWindow, ...]
    outages: tuple[Outage, ...]
    complaints: tuple[Complaint, ...]
    complaints_recorded: bool  # the complaint workflow's records were there
    callbacks_recorded: bool
    acks_recorded: bool
    downs: tuple[DeviceDown, ...]
    ranking: tuple[DeviceRank, ...]

    @property
    def halls(self) -> list[str]:
        return sorted({d.hall for d in self.days})

    def visits(self, hall: str | None = None) -> list[Visit]:
        return [v for d in self.days if hall in (None, d.hall) for v in d.visits]

    def waits(self, hall: str | None = None) -> WaitStats:
        return wait_stats(_called(self.visits(hall)), self.settings.target_wait_s)

    def by_service(self, hall: str | None = None) -> list[tuple[str, int, WaitStats, Accuracy]]:
        """(service, served, waits, estimate accuracy) per service."""
        vs = self.visits(hall)
        errs = [e for d in self.days if hall in (None, d.hall) for e in d.errors]
        out = []
        for service in sorted({v.service for v in vs}):
            mine = [v for v in vs if v.service == service]
            out.append(
                (
                    service,
                    sum(1 for v in mine if v.outcome == "completed"),
                    wait_stats(_called(mine), self.settings.target_wait_s),
                    accuracy(e for e in errs if e.service == service),
                )
            )
        return out

    def by_hour(self, hall: str) -> list[HourRow]:
        """Waits and arrivals per local hour of issue; the busiest and quietest hours tagged."""
        zone = self.settings.zone
        ndays = max(1, len({d.day for d in self.days if d.hall == hall and d.visits}))
        by: dict[int, list[Visit]] = defaultdict(list)
        for v in self.visits(hall):
            by[datetime.fromtimestamp(v.issued_at, zone).hour].append(v)
        rows = [
            (h, len(vs) / ndays, wait_stats(_called(vs), self.settings.target_wait_s))
            for h, vs in sorted(by.items())
        ]
        busiest = max(rows, key=lambda r: (r[1], -r[0]), default=None)
        quiet_pool = [
            r for r in rows if r[2].n >= self.settings.min_hour_samples and r[2].mean_s is not None
        ]
        quietest = min(quiet_pool, key=lambda r: (r[2].mean_s or 0.0, r[1], r[0]), default=None)
        out = []
        for r in rows:
            tag = "busiest" if r is busiest else "quietest" if r is quietest else ""
            out.append(HourRow(r[0], r[1], r[2], tag))
        return out

    def by_day(self, hall: str) -> list[tuple[HallDay, WaitStats]]:
        return [
            (d, wait_stats(_called(d.visits), self.settings.target_wait_s))
            for d in self.days
            if d.hall == hall
        ]


def _called(visits: Iterable[Visit]) -> list[float]:
    return [v.wait_s for v in visits if v.wait_s is not None]


def build(
    period: Period,
    days: Sequence[HallDay],
    settings: ReportSettings,
    *,
    workflow: Workflow = Workflow(),
    hall_filter: str | None = None,
    generated_at: float = 0.0,
) -> Report:
    """Every section's figures from the replayed hall-days and the workflow records."""
    days = sorted(days, key=lambda d: (d.day, d.hall))
    # Copies: the replayed days may be shared by several reports (other records).
    peaks = [_with_ack(p, workflow.acks) for d in days for p in d.peaks]
    outs = outages(days, workflow)
    comps = complaints(days, settings, workflow)
    downs = device_downtime(days, settings)
    ranking = device_ranking(downs)
    summaries = []
    for hall in sorted({d.hall for d in days}):
        mine = [d for d in days if d.hall == hall]
        vs = [v for d in mine for v in d.visits]
        first_legs = [v for v in vs if v.leg == 0]
        summaries.append(
            HallSummary(
                hall,
                settings.hall_name(hall),
                len(mine),
                len(first_legs),
                sum(1 for v in vs if v.outcome == "completed"),
                sum(1 for v in vs if v.outcome == "no_show"),
                sum(1 for v in vs if v.outcome == "cancelled"),
                wait_stats(_called(vs), settings.target_wait_s),
                accuracy(e for d in mine for e in d.errors),
                sum(len(d.peaks) for d in mine),
                max((d.peak_headcount for d in mine), default=0),
                sum(1 for o in outs if o.hall == hall),
                sum(1 for c in comps if c.hall == hall),
                sum(r.failures for r in ranking if r.hall == hall),
            )
        )
    return Report(
        period=period,
        hall_filter=hall_filter,
        generated_at=generated_at,
        settings=settings,
        days=tuple(days),
        summaries=tuple(summaries),
        peaks=tuple(peaks),
        emergency=tuple(w for d in days for w in d.emergency),
        outages=tuple(outs),
        complaints=tuple(comps),
        complaints_recorded=workflow.complaints is not None,
        callbacks_recorded=workflow.callbacks is not None,
        acks_recorded=bool(workflow.acks),
        downs=tuple(downs),
        ranking=tuple(ranking),
    )


ACK_MATCH_S = 300.0  # the live engine ticks every 2 s with a warm estimator; the replay differs


def _with_ack(p: PeakEpisode, acks: Sequence[Ack]) -> PeakEpisode:
    """The episode with the acknowledgement of the live episode it matches, if any."""
    near = [
        a
        for a in acks
        if a.hall == p.hall
        and a.alert == "queue_peak"
        and abs(a.since - p.started_at) <= ACK_MATCH_S
    ]
    best = min(near, key=lambda a: abs(a.since - p.started_at), default=None)
    return replace(
        p,
        escalations=list(p.escalations),
        emergency_opened=list(p.emergency_opened),
        acked_at=best.acked_at if best else None,
        acked_by=best.acked_by if best else None,
    )


def report(
    events: Iterable[Stored],
    period: Period,
    settings: ReportSettings,
    *,
    workflow: Workflow = Workflow(),
    hall_filter: str | None = None,
    generated_at: float = 0.0,
) -> Report:
    """Replay every hall-day of `events` (already limited to the period) and build the report."""
    days = [
        replay_hall_day(hall, day, msgs, settings)
        for (hall, day), msgs in hall_days(events, settings.tz).items()
        if period.start <= day <= period.end and hall_filter in (None, hall)
    ]
    return build(
        period,
        days,
        settings,
        workflow=workflow,
        hall_filter=hall_filter,
        generated_at=generated_at,
    )
