"""The centre's report (plan §5: appraisal, archive, failing devices): every section's figures.

The event store is the truth: every figure is recomputed by replaying the stored events of each
hall and business day through the same core as the daemon (parser -> `HallsState` ->
`Estimator`, hall views at every tick -> the alert `RuleEngine`). A hall-day is replayed on its
own, with a fresh state and a cold estimator, so a day's figures do not depend on the period or
the halls asked for: a weekly and a monthly report agree on every day they share.

Pure: messages, settings and the workflow records (complaint handling, outage call-backs,
acknowledgements, read by `hallwatch.daemon.reports.history`) go in; plain frozen data comes out,
for `hallwatch.daemon.reports.html` to lay out. Nothing here reads a clock, a file or the
environment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from hallwatch.daemon.reports.hallday import (
    EmergencyWindow,
    HallDay,
    PeakEpisode,
    Stored,
    Visit,
    hall_days,
    replay_hall_day,
)
from hallwatch.daemon.reports.incidents import (
    Complaint,
    DeviceDown,
    DeviceRank,
    Outage,
    complaints,
    device_downtime,
    device_ranking,
    outages,
)
from hallwatch.daemon.reports.inputs import Ack, Period, ReportSettings, Workflow
from hallwatch.daemon.reports.stats import Accuracy, WaitStats, accuracy, wait_stats

NO_RECORDS = Workflow()  # no workflow table read (a frozen default)


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
    workflow: Workflow = NO_RECORDS,
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
    workflow: Workflow = NO_RECORDS,
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
