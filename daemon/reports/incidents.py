"""The period's incidents: system outages, device failures and complaints, from replayed days."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from hallwatch.daemon.reports.hallday import HallDay
from hallwatch.daemon.reports.inputs import ReportSettings, Workflow
from hallwatch.sensors.events import DeviceEvent, SystemEvent

ANSWER_WORKING_DAYS = 2  # plan §4.2: answer a complaint within 2 working days
SYSTEM_ALERTS = ("system_outage", "system_down")  # the rule's name, now and before


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
