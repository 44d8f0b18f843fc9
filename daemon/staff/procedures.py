"""The staff procedures the daemon runs (plan 4.2 complaints, 4.3 outage call-backs and paper
intake): the desk, the call-backs and the paper register over their stores, their tick, and the
working-day calendar's notices (a log line, and once a business day a notification to the top
escalation level)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from hallwatch.alerts.outbox import Outbox
from hallwatch.daemon.config.alerts import RuleSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.core.hours import Hours
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.staff.complaint_desk import ComplaintDesk, Notifier
from hallwatch.daemon.staff.complaint_store import ComplaintStore
from hallwatch.daemon.staff.outage import Callbacks, CallbackStore
from hallwatch.daemon.staff.paper import PaperIntake, PaperStore

log = logging.getLogger("hallwatch")

TICK_S = 2.0  # complaints, alarms and call-backs are looked at this often


def warn_calendar(calendar: WorkCalendar, day: date) -> None:
    """Log an error when the calendar lacks the official schedule of `day`'s year or the next."""
    problem = calendar.coverage_problem(day)
    if problem:
        log.error("%s", problem)


@dataclass(frozen=True, slots=True)
class Stores:
    """The registers the procedures keep, and the outbox their notices go through."""

    complaints: ComplaintStore
    callbacks: CallbackStore
    paper: PaperStore
    outbox: Outbox


class StaffProcedures:
    """Complaints, outage call-backs and paper intake: `start` builds them over their stores,
    `run` ticks them. The hall's name, hours and outage escalation come from the alert rules."""

    def __init__(
        self,
        settings: Settings,
        rules: RuleSettings,
        calendar: WorkCalendar,
        *,
        state: Callable[[], HallsState],
        clock: Callable[[], float],
        notifier: Notifier | None,
        per_day: int,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.calendar = calendar
        self.state = state
        self.clock = clock
        self.notifier = notifier
        self.per_day = per_day
        self.complaints: ComplaintDesk | None = None
        self.callbacks: Callbacks | None = None
        self.paper: PaperIntake | None = None

    def hall_name(self, hall: str) -> str:
        return self.rules.for_hall(hall).name or hall

    def hours(self, hall: str) -> Hours:
        r = self.rules.for_hall(hall)
        return Hours(r.open, r.close)

    def notice_roles(self) -> Sequence[str]:
        return self.rules.level_roles[-1]

    async def start(self, stores: Stores) -> tuple[ComplaintDesk, Callbacks, PaperIntake]:
        """The desk (open complaints loaded, topic events since the last run imported), the
        call-backs (pending ones loaded) and the paper register."""
        s = self.settings
        tz = s.hall.timezone
        self.complaints = ComplaintDesk(
            stores.complaints,
            s.complaints,
            self.calendar,
            tz=tz,
            clock=self.clock,
            notifier=self.notifier,
            hall_name=self.hall_name,
            topic_root=s.mqtt.topic_root,
            per_day=self.per_day,
            hours=self.hours,
        )
        await self.complaints.start()
        self.callbacks = Callbacks(
            stores.callbacks,
            stores.outbox,
            s.outage,
            state=self.state,
            callback_after=lambda h: self.rules.for_hall(h).system_outage.escalate_after_s,
            clock=self.clock,
            hall_name=self.hall_name,
        )
        await self.callbacks.start()
        self.paper = PaperIntake(
            stores.paper,
            state=self.state,
            clock=self.clock,
            notifier=self.notifier,
            roles=s.complaints.remind_roles,
            hall_name=self.hall_name,
            tz=tz,
        )
        await self.paper.start()
        return self.complaints, self.callbacks, self.paper

    async def run(self) -> None:
        """Every tick: complaints from the topic, complaint alarms, call-backs on recovery; once
        a day a loud notice when the working-day calendar does not cover this year or next."""
        assert self.complaints and self.callbacks and self.paper, "start() first"
        last_day = None
        while True:
            now = self.clock()
            try:
                await self.complaints.tick(now)
                await self.callbacks.tick(now)
                await self.paper.tick(now)
                day = self.state().business_day(now)
                if day != last_day:
                    last_day = day
                    await self.calendar_notice(day, now)
            except Exception:
                log.exception("staff tick failed")
            await asyncio.sleep(TICK_S)

    async def calendar_notice(self, day: date, now: float) -> None:
        """Notify the top escalation level that the calendar lacks this year or next (keyed by
        business day, so a restart the same day sends nothing again)."""
        problem = self.calendar.coverage_problem(day)
        if problem is None or self.notifier is None:
            return
        missing = [y for y in (day.year, day.year + 1) if y not in self.calendar.covered]
        years = "、".join(str(y) for y in missing)
        await self.notifier.send_notice(
            kind="calendar",
            key=f"calendar/{day.isoformat()}",
            hall="",
            roles=self.notice_roles(),
            title="【工作日历缺失】",
            lines=[
                f"> 工作日历没有 {years} 年的法定节假日和调休安排，投诉办理期限可能算错。",
                "请在配置 [calendar] 中录入国务院办公厅公布的放假和调休日期"
                "（holidays、workdays），并把该年列入 complete_years，或升级 chinese-calendar。",
            ],
            sms=f"工作日历缺少{years}年节假日安排，请尽快录入",
            now=now,
        )
