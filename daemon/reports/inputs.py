"""What a report takes in: its settings, its period and the workflow records beside the events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hallwatch.alerts.drill import PREFIX as DRILL_PREFIX
from hallwatch.daemon.config.alerts import RuleSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.core.workdays import WorkCalendar

# The estimator's advice (a forward simulation per service) is most of a replay's cost; the
# live daemon refreshes it every tick, `hallwatch replay` every 30 s, a report every minute:
# reports speak in minutes.
ADVICE_EVERY_S = 60.0
YEARS = range(2000, 2101)  # a report's days lie in these years


@dataclass(frozen=True, slots=True)
class ReportSettings:
    """What a report needs of the daemon's settings; `from_settings` builds it."""

    tz: str = "Asia/Shanghai"
    root: str = "hall"
    heartbeat_timeout_s: float = 90.0
    target_wait_s: float = 1200.0  # the plan's 20 minutes
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


def period_of(start: str, end: str, *, max_days: int | None = None) -> Period:
    """The period from two YYYY-MM-DD strings; ValueError with a reason a person can act on."""
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise ValueError(f"dates are YYYY-MM-DD: from={start[:20]!r}, to={end[:20]!r}") from None
    for d in (first, last):
        if d.year not in YEARS:
            raise ValueError(f"{d}: a report covers the years {YEARS.start}-{YEARS.stop - 1}")
    period = Period(first, last)  # ValueError when to is before from
    if max_days is not None and period.days > max_days:
        raise ValueError(f"at most {max_days} days per report; use the CLI for more")
    return period


def event_filter(lo: float, hi: float, hall: str | None) -> tuple[str, list[Any]]:
    """The WHERE clause of a period's events of one hall or all. "All" leaves drill halls out
    (alerts.drill): a drill is not a day of the centre; name the drill hall to report it."""
    sql = "ts >= ? AND ts < ?"
    args: list[Any] = [lo, hi]
    if hall is not None:
        sql += " AND hall = ?"
        args.append(hall)
    else:
        sql += " AND hall NOT LIKE ?"
        args.append(DRILL_PREFIX + "%")
    return sql, args
