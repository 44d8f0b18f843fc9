"""Paper intake during an outage (plan 4.3, 先收件后补录): the register of documents taken on
paper while a business system is down, and the list to enter once it is back.

Staff register each submission as they take it (service, customer, documents, who took it); an
entry is stored before the API answers, and only while one of the hall's systems is down. When
every system of the hall is back, the supervisor is told once how many submissions wait to be
entered (a notice through the durable outbox under the key `paper/{hall}/{first id}`, stored
before the submissions are marked announced: a crash in between sends nothing twice). Each
submission is closed by the person who entered it, with the business system's reference number.
What is still open shows in `hallwatch_paper_pending{hall}` and `GET /api/v1/paper?pending=1`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hallwatch.daemon.base.pii import mask_phone
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.staff.complaint_desk import Notifier
from hallwatch.daemon.staff.complaints import ComplaintError, clean_phone
from hallwatch.daemon.staff.outage import OutageError, outage_status
from hallwatch.daemon.store.files import OnSchema

log = logging.getLogger("hallwatch.paper")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS paper_intake (
    id INTEGER PRIMARY KEY,
    hall TEXT NOT NULL,
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    phone TEXT,                        -- personal data: stored, shown masked
    documents TEXT NOT NULL,
    received_at REAL NOT NULL,
    received_by TEXT NOT NULL,
    systems TEXT NOT NULL,             -- the systems down when taken, comma-separated
    note TEXT NOT NULL DEFAULT '',
    announced_at REAL,                 -- when the supervisor was told it waits to be entered
    entered_at REAL,                   -- 补录: entered into the business system
    entered_by TEXT,
    reference TEXT                     -- the business system's number for it
);
CREATE INDEX IF NOT EXISTS paper_pending ON paper_intake (hall, entered_at);
"""
SHARED = ("paper_intake",)  # in PostgreSQL, the centre's: taken through A, entered through B

# Text limits of the register's fields: (field, limit, required).
FIELDS = (
    ("service", 32, True),
    ("name", 32, True),
    ("documents", 500, True),
    ("by", 64, True),
    ("note", 500, False),
)
# A notice lists at most this many submissions; the rest are counted.
NOTICE_LINES = 10


@dataclass(frozen=True, slots=True)
class Paper:
    id: int
    hall: str
    service: str
    name: str
    phone: str | None
    documents: str
    received_at: float
    received_by: str
    systems: tuple[str, ...]
    note: str = ""
    announced_at: float | None = None
    entered_at: float | None = None
    entered_by: str | None = None
    reference: str | None = None


_COLS = (
    "id, hall, service, name, phone, documents, received_at, received_by, systems, note,"
    " announced_at, entered_at, entered_by, reference"
)


def _row(r: Sequence[Any]) -> Paper:
    return Paper(
        id=r[0],
        hall=r[1],
        service=r[2],
        name=r[3],
        phone=r[4],
        documents=r[5],
        received_at=r[6],
        received_by=r[7],
        systems=tuple(s for s in r[8].split(",") if s),
        note=r[9],
        announced_at=r[10],
        entered_at=r[11],
        entered_by=r[12],
        reference=r[13],
    )


class PaperStore(OnSchema):
    """The paper-intake register. Use `async with PaperStore(path):` (SQLite) or
    `PaperStore.open(settings.store)` (PostgreSQL when `store.url` is set)."""

    SCHEMA = _SCHEMA
    NAME = "paper store"
    SHARED = SHARED

    async def add(self, p: Paper) -> Paper:
        async with self.transaction() as tx:
            row = await tx.fetchone(
                "INSERT INTO paper_intake (hall, service, name, phone, documents, received_at,"
                " received_by, systems, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    p.hall,
                    p.service,
                    p.name,
                    p.phone,
                    p.documents,
                    p.received_at,
                    p.received_by,
                    ",".join(p.systems),
                    p.note,
                ),
            )
        got = await self.get(int(row[0]))
        assert got is not None
        return got

    async def get(self, paper_id: int) -> Paper | None:
        sql = f"SELECT {_COLS} FROM paper_intake WHERE id = ?"
        async with self.db.execute(sql, (paper_id,)) as cur:
            row = await cur.fetchone()
        return _row(row) if row else None

    async def select(self, *, hall: str | None = None, pending: bool | None = None) -> list[Paper]:
        where: list[str] = []
        args: list[Any] = []
        if hall:
            where.append("hall = ?")
            args.append(hall)
        if pending is not None:
            where.append("entered_at IS NULL" if pending else "entered_at IS NOT NULL")
        sql = f"SELECT {_COLS} FROM paper_intake"
        if where:
            sql += " WHERE " + " AND ".join(where)
        async with self.db.execute(sql + " ORDER BY id", args) as cur:
            return [_row(r) for r in await cur.fetchall()]

    async def mark_announced(self, ids: Iterable[int], at: float) -> None:
        async with self.transaction() as tx:
            await tx.executemany(
                "UPDATE paper_intake SET announced_at = ? WHERE id = ? AND announced_at IS NULL",
                [(at, i) for i in ids],
            )

    async def mark_entered(self, paper_id: int, *, by: str, reference: str, at: float) -> bool:
        """True if it was open and is now entered; False if it was entered already."""
        async with self.transaction() as tx:
            cur = await tx.execute(
                "UPDATE paper_intake SET entered_at = ?, entered_by = ?, reference = ?"
                " WHERE id = ? AND entered_at IS NULL",
                (at, by, reference, paper_id),
            )
            return bool(cur.rowcount)

    async def counts(self) -> dict[str, tuple[int, int]]:
        """Per hall: (waiting to be entered, entered)."""
        async with self.db.execute(
            "SELECT hall, SUM(CASE WHEN entered_at IS NULL THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN entered_at IS NULL THEN 0 ELSE 1 END) FROM paper_intake GROUP BY hall"
        ) as cur:
            return {r[0]: (int(r[1]), int(r[2])) for r in await cur.fetchall()}


def _text(fields: dict[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, limit, required in FIELDS:
        value = fields.get(name, "")
        value = "" if value is None else value
        if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
            need = "is required, " if required else ""
            raise OutageError(
                "missing_field" if required else "bad_field", f"{name} {need}≤{limit} chars"
            )
        out[name] = value.strip()
    return out


def notice_lines(hall_name: str, papers: Sequence[Paper], tz: str) -> tuple[str, list[str], str]:
    """(title, markdown lines, SMS) of the 'waiting to be entered' notice; no names or phones:
    the message goes to a group."""
    zone = ZoneInfo(tz)
    title = f"【纸质收件待补录】{hall_name}"
    lines = [
        f"> 业务系统已恢复，故障期间先收件的纸质材料 {len(papers)} 份待补录，"
        "请尽快录入系统并告知当事人办理结果。",
    ]
    for p in papers[:NOTICE_LINES]:
        at = datetime.fromtimestamp(p.received_at, zone).strftime("%H:%M")
        lines.append(f"- 第 {p.id} 号　{p.service}　{at} 收件（{p.received_by}）")
    if len(papers) > NOTICE_LINES:
        lines.append(f"- 另有 {len(papers) - NOTICE_LINES} 份，见 hallwatch paper list --pending")
    sms = f"{title}：{len(papers)}份纸质材料待补录，请尽快录入"
    return title, lines, sms


class PaperIntake:
    """The register over the live hall state, and the notice once the system is back."""

    def __init__(
        self,
        store: PaperStore,
        *,
        state: Callable[[], HallsState],
        clock: Callable[[], float],
        notifier: Notifier | None = None,
        roles: Sequence[str] = ("supervisor",),
        hall_name: Callable[[str], str] = lambda h: h,
        tz: str = "Asia/Shanghai",
    ) -> None:
        self.store = store
        self._state = state
        self.clock = clock
        self.notifier = notifier
        self.roles = tuple(roles)
        self.hall_name = hall_name
        self.tz = tz
        self.tally: dict[str, tuple[int, int]] = {}  # hall -> (pending, entered), for metrics

    async def start(self) -> None:
        self.tally = await self.store.counts()

    def _down(self, hall: str, now: float) -> tuple[str, ...] | None:
        h = self._state().halls.get(hall)
        st = outage_status(h, now, 0.0) if h is not None else None
        return st.systems if st is not None else None

    async def register(self, *, hall: str, phone: object = None, **fields: object) -> Paper:
        """Register a submission taken on paper; OutageError unless the hall is in outage."""
        text = _text(fields)
        try:
            number = clean_phone(phone if isinstance(phone, str) or phone is None else "x")
        except ComplaintError as err:
            raise OutageError("bad_phone", str(err)) from None
        now = self.clock()
        systems = self._down(hall, now)
        if systems is None:
            raise OutageError("no_outage", "no information system of this hall is down")
        p = await self.store.add(
            Paper(
                id=0,
                hall=hall,
                service=text["service"],
                name=text["name"],
                phone=number,
                documents=text["documents"],
                received_at=now,
                received_by=text["by"],
                systems=systems,
                note=text["note"],
            )
        )
        self.tally = await self.store.counts()
        log.info("paper submission %d taken in %s (%s)", p.id, hall, p.service)
        return p

    async def entered(self, paper_id: int, *, by: object, reference: object) -> Paper:
        """Close a submission: entered into the business system under `reference`."""
        for name, value in (("by", by), ("reference", reference)):
            if not isinstance(value, str) or not value.strip() or len(value) > 64:
                raise OutageError("missing_field", f"{name} is required, ≤64 chars")
        assert isinstance(by, str) and isinstance(reference, str)
        p = await self.store.get(paper_id)
        if p is None:
            raise OutageError("not_found", f"no paper submission {paper_id}")
        done = await self.store.mark_entered(
            paper_id, by=by.strip(), reference=reference.strip(), at=self.clock()
        )
        if not done:
            raise OutageError("already_entered", f"paper submission {paper_id} was entered already")
        self.tally = await self.store.counts()
        got = await self.store.get(paper_id)
        assert got is not None
        return got

    async def tick(self, now: float) -> int:
        """Tell each hall whose systems are all back what waits to be entered; returns the
        number of submissions announced. The register may be shared (PostgreSQL): the tally is
        read again here."""
        self.tally = await self.store.counts()
        waiting: dict[str, list[Paper]] = {}
        halls = self._state().halls  # a shared register holds other shards' halls too
        for p in await self.store.select(pending=True):
            if p.announced_at is None and p.hall in halls and self._down(p.hall, now) is None:
                waiting.setdefault(p.hall, []).append(p)
        told = 0
        for hall, papers in waiting.items():
            if self.notifier is not None:
                title, lines, sms = notice_lines(self.hall_name(hall), papers, self.tz)
                await self.notifier.send_notice(  # store the notice first ...
                    kind="system_outage",
                    key=f"paper/{hall}/{papers[0].id}",
                    hall=hall,
                    roles=self.roles,
                    title=title,
                    lines=lines,
                    sms=sms,
                    now=now,
                )
            await self.store.mark_announced([p.id for p in papers], now)  # ... then record
            told += len(papers)
            log.info("system back in %s: %d paper submissions to enter", hall, len(papers))
        return told

    def public(self, p: Paper, *, pii: bool) -> dict[str, Any]:
        """A submission as the API shows it; the phone masked unless `pii`."""
        zone = ZoneInfo(self.tz)
        return {
            "id": p.id,
            "hall": p.hall,
            "service": p.service,
            "name": p.name,
            "phone": p.phone if pii else mask_phone(p.phone),
            "documents": p.documents,
            "received_at": p.received_at,
            "received_at_local": datetime.fromtimestamp(p.received_at, zone).isoformat(
                timespec="seconds"
            ),
            "received_by": p.received_by,
            "systems": list(p.systems),
            "note": p.note,
            "announced_at": p.announced_at,
            "entered_at": p.entered_at,
            "entered_by": p.entered_by,
            "reference": p.reference,
            "state": "pending" if p.entered_at is None else "entered",
        }
