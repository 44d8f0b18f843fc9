"""The complaint register: in the events' SQLite file (its own connection, WAL), or in
PostgreSQL with `store.url`, where the complaints and their history are shared by every instance
(one registered through A is seen and answered through B) and the import cursor over the
instance's own event log is the instance's.

Store, then act: a registration or transition is committed (the complaint's row and an
appended history row, in one transaction) before the API answers. The import cursor over the
`complaint` topic's stored events is kept in the same transaction as the complaints it
produced, so a crash at any point loses nothing and registers nothing twice. The procedure over
the register is `complaint_desk.ComplaintDesk`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from hallwatch.daemon.staff.complaints import Complaint, Step
from hallwatch.daemon.store.files import OnSchema

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
SHARED = ("complaints", "complaint_history")  # in PostgreSQL; the cursor is the instance's


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


Stmt = tuple[str, Sequence[Any]]


class ComplaintStore(OnSchema):
    """One connection to the complaint tables. Use `async with ComplaintStore(path):` (SQLite)
    or `ComplaintStore.open(settings.store)` (PostgreSQL when `store.url` is set)."""

    SCHEMA = _SCHEMA
    NAME = "complaint store"
    SHARED = SHARED

    async def _tx(self, change: Stmt, history: Stmt, *rest: Stmt) -> bool:
        """In one transaction: `change`; `history`, only if `change` changed a row (else nothing
        happened); then `rest` either way. Returns whether `change` changed a row."""
        async with self.transaction() as tx:
            cur = await tx.execute(*change)
            changed = bool(cur.rowcount == 1)
            if changed:
                await tx.execute(*history)
            for sql, args in rest:
                await tx.execute(sql, args)
        return changed

    @staticmethod
    def _history_row(c: Complaint, s: Step) -> Stmt:
        return (
            "INSERT INTO complaint_history (hall, complaint_id, at, action, actor, state, note,"
            " data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
        insert = (
            "INSERT INTO complaints VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (c.hall, c.complaint_id, c.state, c.received_at, _encode(c)),
        )
        rest = () if cursor is None else (self._cursor_row(*cursor),)
        return await self._tx(insert, self._history_row(c, step), *rest)

    async def update(self, c: Complaint, step: Step, *, expect_state: str) -> bool:
        """Save `c` and append `step`, if the stored state is still `expect_state`."""
        update = (
            "UPDATE complaints SET state = ?, body = ? WHERE hall = ? AND complaint_id = ?"
            " AND state = ?",
            (c.state, _encode(c), c.hall, c.complaint_id, expect_state),
        )
        return await self._tx(update, self._history_row(c, step))

    @staticmethod
    def _cursor_row(name: str, value: int) -> Stmt:
        return (
            "INSERT INTO complaint_meta VALUES (?, ?) ON CONFLICT(name) DO UPDATE"
            " SET value = excluded.value",
            (name, str(value)),
        )

    async def save_cursor(self, name: str, value: int) -> None:
        await self.write(*self._cursor_row(name, value))

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
        """(seq, topic, payload) of stored `complaint` events after `after` in this instance's
        event log (none without the log's table)."""
        try:
            async with self.db.execute(
                "SELECT seq, topic, payload FROM events WHERE seq > ? AND topic LIKE ?"
                " ORDER BY seq LIMIT ?",
                (after, f"{root}/%/complaint", limit),
            ) as cur:
                return list(await cur.fetchall())
        except self.file.missing:
            return []

    async def last_event_seq(self) -> int:
        try:
            async with self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM events") as cur:
                row = await cur.fetchone()
        except self.file.missing:
            return 0
        return int(row[0]) if row else 0
