"""The complaint desk: the procedure over the register (complaint_store.ComplaintStore).

Registration, staff actions, complaints imported from the `complaint` topic's stored events,
and the alarms (due soon, overdue) sent through the durable alert outbox before the alarm is
recorded in the history, so a repeat is a no-op.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from hallwatch.daemon.base.pii import mask_phone
from hallwatch.daemon.base.ratelog import RateLimitedLog
from hallwatch.daemon.config.staff import ComplaintSettings
from hallwatch.daemon.core.hours import Hours
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.staff import complaints as cp
from hallwatch.daemon.staff.complaint_store import ComplaintStore
from hallwatch.daemon.staff.complaints import Complaint, ComplaintError
from hallwatch.sensors.events import ComplaintEvent
from hallwatch.sensors.parse import parse

log = logging.getLogger("hallwatch.complaints")


class Notifier(Protocol):
    """Where alarms go: `alerts.service.Alerts.send_notice` (the durable outbox)."""

    async def send_notice(
        self,
        *,
        kind: str,
        key: str,
        hall: str,
        roles: Sequence[str],
        title: str,
        lines: Sequence[str],
        sms: str,
        now: float,
    ) -> int: ...


# --- the desk ------------------------------------------------------------------------------

CSV_FIELDS = (
    "hall",
    "complaint_id",
    "channel",
    "severity",
    "summary",
    "phone",
    "received_by",
    "received_at",
    "department",
    "assignee",
    "current_state",
    "proposal",
    "step",
    "step_at",
    "action",
    "action_name",
    "actor",
    "state_after",
    "note",
    "detail",
)


class ComplaintDesk:
    """The procedure over the store: register, act, import topic events, raise alarms.

    Keeps the open complaints in memory (for the metrics and the alarms); every change is
    committed first. `notifier` may be None (no alerting configured): alarms are then only
    recorded in the history.
    """

    def __init__(
        self,
        store: ComplaintStore,
        settings: ComplaintSettings,
        calendar: WorkCalendar,
        *,
        tz: str,
        clock: Callable[[], float],
        notifier: Notifier | None = None,
        hall_name: Callable[[str], str] = lambda h: h,
        topic_root: str = "hall",
        per_day: int = 200,
        hours: Callable[[str], Hours] = lambda h: Hours(),
    ) -> None:
        self.store = store
        self.hours = hours  # a hall's working hours: when its staff can be told
        self.settings = settings
        self.calendar = calendar
        self.tz = tz
        self.clock = clock
        self.notifier = notifier
        self.hall_name = hall_name
        self.root = topic_root
        self.open: dict[tuple[str, str], Complaint] = {}
        self._lock = asyncio.Lock()
        # Per open complaint: the version whose alarm instants (`cp.marks`) were computed, with
        # the hours they were computed for, and the instant it must be checked again. The
        # calendar arithmetic per complaint was a fifth of an idle daemon's CPU at 500 halls.
        self._marks: dict[tuple[str, str], tuple[Complaint, Hours, cp.Marks, float]] = {}
        # The topic registers at most `per_day` complaints a hall and business day (a device
        # flooding it must not fill the register and the staff's phones); staff entries are
        # not capped. Refused ones are counted here and logged with a rate limit.
        self.per_day = per_day
        self.over_limit = 0
        self._cap_log = RateLimitedLog(log, 60.0)

    async def start(self) -> None:
        """Load the open complaints and take in complaint events stored since the last run."""
        self.open = {(c.hall, c.complaint_id): c for c in await self.store.select(open_only=True)}
        await self.import_events()

    # --- registration and actions -------------------------------------------------------

    async def register(self, **fields: Any) -> tuple[Complaint, bool]:
        """Register (fields of `complaints.register`, `received_at` defaulting to now).
        Returns the stored complaint and whether it is new (an existing id is not replaced)."""
        fields.setdefault("received_at", self.clock())
        c, step = cp.register(settings=self.settings, **fields)
        async with self._lock:
            new = await self.store.add(c, step)
            if not new:
                old = await self.store.get(c.hall, c.complaint_id)
                assert old is not None
                return old, False
            self.open[(c.hall, c.complaint_id)] = c
        log.info("complaint %s/%s registered (%s)", c.hall, c.complaint_id, c.severity)
        await self.check(self.clock())
        return c, True

    async def act(self, hall: str, complaint_id: str, action: str, **kw: Any) -> Complaint:
        """Apply a staff action; KeyError when no such complaint, ComplaintError if refused."""
        async with self._lock:
            c = await self.store.get(hall, complaint_id)
            if c is None:
                raise KeyError(complaint_id)
            new, step = cp.apply(c, action, at=self.clock(), **kw)
            if not await self.store.update(new, step, expect_state=c.state):
                raise ComplaintError("conflict", "changed meanwhile; try again")
            if new.open:
                self.open[(hall, complaint_id)] = new
            else:
                self.open.pop((hall, complaint_id), None)
        log.info("complaint %s/%s: %s -> %s", hall, complaint_id, action, new.state)
        await self.check(self.clock())
        return new

    # --- the complaint topic ------------------------------------------------------------

    async def import_events(self) -> int:
        """Register complaints from `complaint` events stored since the cursor."""
        n = 0
        while True:
            after = await self.store.cursor("events")
            rows = await self.store.complaint_events(after, self.root)
            if not rows:
                last = await self.store.last_event_seq()
                if last > after:
                    await self.store.save_cursor("events", last)
                return n
            for seq, topic, payload in rows:
                ev = parse(topic, bytes(payload), self.root)
                if not isinstance(ev, ComplaintEvent) or await self._over_cap(ev):
                    await self.store.save_cursor("events", seq)
                    continue
                try:
                    c, step = cp.register(
                        hall=ev.hall,
                        complaint_id=ev.complaint_id,
                        channel=ev.channel,
                        severity=ev.severity,
                        summary=ev.summary,
                        received_by=ev.received_by,
                        received_at=ev.ts,
                        phone=ev.phone,
                        settings=self.settings,
                    )
                except ComplaintError as err:
                    log.warning("complaint event %d not registered: %s", seq, err)
                    await self.store.save_cursor("events", seq)
                    continue
                async with self._lock:
                    if await self.store.add(c, step, cursor=("events", seq)):
                        self.open[(c.hall, c.complaint_id)] = c
                        n += 1
                    else:
                        await self.store.save_cursor("events", seq)

    async def _over_cap(self, ev: ComplaintEvent) -> bool:
        """Whether `ev` would be a new complaint past the hall's daily cap (then counted)."""
        zone = ZoneInfo(self.tz)
        day = datetime.fromtimestamp(ev.ts, zone).date()
        start = datetime.combine(day, datetime.min.time(), zone)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
        n = await self.store.count_received(ev.hall, start.timestamp(), end.timestamp())
        if n < self.per_day or await self.store.get(ev.hall, ev.complaint_id) is not None:
            return False
        self.over_limit += 1
        self._cap_log.warn(
            ev.hall,
            self.clock(),
            "complaint from the topic not registered: hall %s has %d on %s already",
            ev.hall,
            n,
            day.isoformat(),
        )
        return True

    # --- alarms and figures -------------------------------------------------------------

    async def check(self, now: float) -> int:
        """Raise the alarms due at `now`: notify through the outbox, then record them."""
        raised = 0
        for key in list(self.open):
            c = self.open.get(key)
            if c is None:
                continue
            hours = self.hours(c.hall)
            kept = self._marks.get(key)
            if kept is not None and kept[0] is c and kept[1] == hours:
                if now < kept[3]:
                    continue  # nothing of it can be due before its next mark
                m = kept[2]
            else:
                m = cp.marks(c, self.settings, self.calendar, self.tz, hours)
            first = c
            for alarm in cp.alarms(c, now, self.settings, self.calendar, self.tz, hours, m):
                await self._notify(alarm, c, now)
                async with self._lock:
                    cur = self.open.get(key)
                    if cur is None or alarm.flag in cur.raised:
                        continue
                    new, step = cp.raised(cur, alarm, now)
                    if await self.store.update(new, step, expect_state=cur.state):
                        self.open[key] = new
                        c = new
                        raised += 1
            if c is first:  # else computed again for the new version on the next tick
                self._marks[key] = (c, hours, m, m.next_after(now))
        if len(self._marks) > len(self.open):
            for gone in [k for k in self._marks if k not in self.open]:
                del self._marks[gone]
        return raised

    async def _notify(self, alarm: cp.Alarm, c: Complaint, now: float) -> None:
        if self.notifier is None:
            return
        roles = (
            self.settings.remind_roles
            if alarm.kind in ("remind", "registered")
            else self.settings.escalate_roles
        )
        title, lines = cp.alarm_text(alarm, c, self.hall_name(c.hall), self.tz)
        sms = f"{title}：{c.complaint_id} {lines[0].lstrip('> ')}"
        await self.notifier.send_notice(
            kind="complaint",
            key=alarm.key,
            hall=c.hall,
            roles=roles,
            title=title,
            lines=lines,
            sms=sms,
            now=now,
        )

    def counts(self, now: float) -> dict[str, cp.HallCounts]:
        """Per hall (a scrape reads them): deadlines from the marks the alarm check keeps."""
        return cp.counts(
            self.open.values(), now, self.settings, self.calendar, self.tz, self._deadline
        )

    def _deadline(self, c: Complaint) -> cp.Deadline | None:
        kept = self._marks.get((c.hall, c.complaint_id))
        if kept is not None and kept[0] is c:
            return kept[2].deadline
        return cp.deadline(c, self.settings, self.calendar, self.tz)

    async def tick(self, now: float) -> None:
        await self.import_events()
        await self.reload()
        await self.check(now)

    async def reload(self) -> None:
        """The open complaints as stored: the register may be shared (PostgreSQL), another
        instance may have registered, answered or closed one. A SQLite register is written by
        this daemon only (the CLI goes through its API): what it holds is already here, and
        reading it back was a fifth of an idle daemon's CPU at 500 halls."""
        if not self.store.shared:
            return
        stored = await self.store.select(open_only=True)
        async with self._lock:
            # A complaint read back unchanged stays the object it was, so the alarm instants
            # kept for it (`_marks`, by identity) hold: reading anew every tick recomputed
            # every complaint's calendar arithmetic every 2 s.
            old = self.open
            fresh = {(c.hall, c.complaint_id): c for c in stored}
            for key, c in fresh.items():
                was = old.get(key)
                if was is not None and was == c:
                    fresh[key] = was
            self.open = fresh

    # --- views --------------------------------------------------------------------------

    def public(self, c: Complaint, *, pii: bool, now: float | None = None) -> dict[str, Any]:
        """A complaint as the API shows it; the phone masked unless `pii`."""
        d = asdict(c)
        d["raised"] = sorted(c.raised)
        d["phone"] = c.phone if pii else mask_phone(c.phone)
        d["state_name"] = cp.STATE_NAMES.get(c.state, c.state)
        dl = cp.deadline(c, self.settings, self.calendar, self.tz)
        d["deadline"] = None if dl is None else {"stage": dl.stage, "due_at": dl.due_at}
        if dl is not None and now is not None:
            d["overdue"] = now >= dl.due_at
        return d

    async def export_csv(
        self,
        *,
        pii: bool,
        hall: str | None = None,
        state: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> str:
        """One row per history step of every matching complaint (UTF-8 with BOM, for Excel)."""
        zone = ZoneInfo(self.tz)

        def iso(ts: float) -> str:
            return datetime.fromtimestamp(ts, zone).isoformat(timespec="seconds")

        buf = io.StringIO()
        buf.write("\ufeff")
        w = csv.writer(buf)
        w.writerow(CSV_FIELDS)
        for c in await self.store.select(hall=hall, state=state, since=since, until=until):
            phone = c.phone if pii else mask_phone(c.phone)
            for i, s in enumerate(await self.store.history(c.hall, c.complaint_id), 1):
                w.writerow(
                    [
                        c.hall,
                        c.complaint_id,
                        c.channel,
                        c.severity,
                        c.summary,
                        phone or "",
                        c.received_by,
                        iso(c.received_at),
                        c.department,
                        c.assignee,
                        c.state,
                        c.proposal,
                        i,
                        iso(s.at),
                        s.action,
                        cp.ACTION_NAMES.get(s.action, s.action),
                        s.actor,
                        s.state,
                        s.note,
                        json.dumps(dict(s.data), ensure_ascii=False) if s.data else "",
                    ]
                )
        return buf.getvalue()
