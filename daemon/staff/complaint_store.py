"""Complaints in SQLite (the events' database file, its own connection, WAL) and the desk
that runs the procedure over them.

Store, then act: a registration or transition is committed (the complaint's row and an
appended history row, in one transaction) before the API answers; an alarm's notifications go
into the alert outbox (durable, keyed, so a repeat is a no-op) before the alarm is recorded in
the history. Complaints from the `complaint` topic are read from the stored event log, after a
cursor kept in the same transaction as the complaints it produced, so a crash at any point
loses nothing and registers nothing twice.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiosqlite
from hallwatch.daemon.base.pii import mask_phone
from hallwatch.daemon.base.ratelog import RateLimitedLog
from hallwatch.daemon.config.staff import ComplaintSettings
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.staff import complaints as cp
from hallwatch.daemon.staff.complaints import Complaint, ComplaintError, Step
from hallwatch.daemon.store.sqlite import SqliteFile
from hallwatch.sensors.events import ComplaintEvent
from hallwatch.sensors.parse import parse

log = logging.getLogger("hallwatch.complaints")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS complaints (
    hall TEXT NOT NULL,
    complaint_id TEXT NOT NULL,
    state TEXT NOT NULL,
    received_at REAL NOT NULL,
    body TEXT NOT NULL,                -- the Complaint as JSON, phone included (never logged)
    PRIMARY KEY (hall, complaint_id)
);
CREATE INDEX IF NOT EXISTS complaints_state ON complaints (state);
CREATE INDEX IF NOT EXISTS complaints_received ON complaints (hall, received_at);
CREATE TABLE IF NOT EXISTS complaint_history (
    seq INTEGER PRIMARY KEY,
    hall TEXT NOT NULL,
    complaint_id TEXT NOT NULL,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    state TEXT NOT NULL,               -- the state after the step
    note TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS complaint_history_of ON complaint_history (hall, complaint_id, seq);
CREATE TABLE IF NOT EXISTS complaint_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _encode(c: Complaint) -> str:
    d = asdict(c)
    d["raised"] = sorted(c.raised)
    return json.dumps(d, ensure_ascii=False)


def _decode(body: str) -> Complaint:
    d = json.loads(body)
    d["raised"] = frozenset(d.get("raised", ()))
    return Complaint(**d)


def _step(r: Sequence[Any]) -> Step:
    return Step(at=r[0], action=r[1], actor=r[2], state=r[3], note=r[4], data=json.loads(r[5]))


class ComplaintStore(SqliteFile):
    """One connection to the complaint tables. Use `async with ComplaintStore(path):`."""

    SCHEMA = _SCHEMA
    NAME = "complaint store"

    async def _tx(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> int:
        """Run statements in one transaction; returns the rows changed by the first."""
        async with self.transaction() as tx:
            first = None
            for sql, args in statements:
                before = tx.total_changes
                await tx.execute(sql, args)
                if first is None:
                    first = tx.total_changes - before
        return first or 0

    @staticmethod
    def _history_row(c: Complaint, s: Step) -> tuple[str, Sequence[Any]]:
        """Append `s`, only if the statement before it changed a row (else nothing happened)."""
        return (
            "INSERT INTO complaint_history (hall, complaint_id, at, action, actor, state, note,"
            " data) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE changes() = 1",
            (
                c.hall,
                c.complaint_id,
                s.at,
                s.action,
                s.actor,
                s.state,
                s.note,
                json.dumps(dict(s.data), ensure_ascii=False),
            ),
        )

    async def add(self, c: Complaint, step: Step, *, cursor: tuple[str, int] | None = None) -> bool:
        """Store a new complaint and its first step; False (nothing stored) if it exists.
        `cursor` (name, value) is saved in the same transaction either way."""
        stmts: list[tuple[str, Sequence[Any]]] = [
            (
                "INSERT OR IGNORE INTO complaints VALUES (?, ?, ?, ?, ?)",
                (c.hall, c.complaint_id, c.state, c.received_at, _encode(c)),
            ),
            self._history_row(c, step),
        ]
        if cursor is not None:
            stmts.append(self._cursor_row(*cursor))
        return await self._tx(stmts) == 1

    async def update(self, c: Complaint, step: Step, *, expect_state: str) -> bool:
        """Save `c` and append `step`, if the stored state is still `expect_state`."""
        update = (
            "UPDATE complaints SET state = ?, body = ? WHERE hall = ? AND complaint_id = ?"
            " AND state = ?",
            (c.state, _encode(c), c.hall, c.complaint_id, expect_state),
        )
        return await self._tx([update, self._history_row(c, step)]) == 1

    @staticmethod
    def _cursor_row(name: str, value: int) -> tuple[str, Sequence[Any]]:
        return (
            "INSERT INTO complaint_meta VALUES (?, ?) ON CONFLICT(name) DO UPDATE"
            " SET value = excluded.value",
            (name, str(value)),
        )

    async def save_cursor(self, name: str, value: int) -> None:
        await self._tx([self._cursor_row(name, value)])

    async def count_received(self, hall: str, since: float, until: float) -> int:
        """Complaints of `hall` received in [since, until)."""
        async with self.db.execute(
            "SELECT count(*) FROM complaints WHERE hall = ? AND received_at >= ?"
            " AND received_at < ?",
            (hall, since, until),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def cursor(self, name: str) -> int:
        async with self.db.execute(
            "SELECT value FROM complaint_meta WHERE name = ?", (name,)
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def get(self, hall: str, complaint_id: str) -> Complaint | None:
        async with self.db.execute(
            "SELECT body FROM complaints WHERE hall = ? AND complaint_id = ?", (hall, complaint_id)
        ) as cur:
            row = await cur.fetchone()
        return _decode(row[0]) if row else None

    async def history(self, hall: str, complaint_id: str) -> list[Step]:
        async with self.db.execute(
            "SELECT at, action, actor, state, note, data FROM complaint_history"
            " WHERE hall = ? AND complaint_id = ? ORDER BY seq",
            (hall, complaint_id),
        ) as cur:
            return [_step(r) for r in await cur.fetchall()]

    async def select(
        self,
        *,
        hall: str | None = None,
        state: str | None = None,
        open_only: bool = False,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Complaint]:
        """Complaints by receipt time, filtered."""
        where: list[str] = []
        args: list[Any] = []
        if hall:
            where.append("hall = ?")
            args.append(hall)
        if state:
            where.append("state = ?")
            args.append(state)
        if open_only:
            where.append("state != 'archived'")
        if since is not None:
            where.append("received_at >= ?")
            args.append(since)
        if until is not None:
            where.append("received_at < ?")
            args.append(until)
        sql = "SELECT body FROM complaints"
        if where:
            sql += " WHERE " + " AND ".join(where)
        async with self.db.execute(sql + " ORDER BY received_at, hall, complaint_id", args) as cur:
            return [_decode(r[0]) for r in await cur.fetchall()]

    async def complaint_events(self, after: int, root: str, limit: int = 500) -> list[Any]:
        """(seq, topic, payload) of stored `complaint` events after `after` (none without the
        event log's table)."""
        try:
            async with self.db.execute(
                "SELECT seq, topic, payload FROM events WHERE seq > ? AND topic LIKE ?"
                " ORDER BY seq LIMIT ?",
                (after, f"{root}/%/complaint", limit),
            ) as cur:
                return list(await cur.fetchall())
        except aiosqlite.OperationalError:
            return []

    async def last_event_seq(self) -> int:
        try:
            async with self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM events") as cur:
                row = await cur.fetchone()
        except aiosqlite.OperationalError:
            return 0
        return int(row[0]) if row else 0


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
    ) -> None:
        self.store = store
        self.settings = settings
        self.calendar = calendar
        self.tz = tz
        self.clock = clock
        self.notifier = notifier
        self.hall_name = hall_name
        self.root = topic_root
        self.open: dict[tuple[str, str], Complaint] = {}
        self._lock = asyncio.Lock()
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
            for alarm in cp.alarms(c, now, self.settings, self.calendar, self.tz):
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
        return raised

    async def _notify(self, alarm: cp.Alarm, c: Complaint, now: float) -> None:
        if self.notifier is None:
            return
        roles = (
            self.settings.remind_roles if alarm.kind == "remind" else self.settings.escalate_roles
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
        return cp.counts(self.open.values(), now, self.settings, self.calendar, self.tz)

    async def tick(self, now: float) -> None:
        await self.import_events()
        await self.check(now)

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
