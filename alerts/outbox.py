"""The durable outbox: every notification is stored (SQLite, or PostgreSQL) before it is sent.

Rows are keyed by an idempotency key (a second enqueue of the same key changes nothing), so a
transition re-derived after a crash cannot be sent twice. A row is `pending` until a channel
accepts it (`sent`), or until it has failed for `dead_after_s` or failed permanently (`dead`:
kept, counted and listed, never silently dropped). The rule engine's state is saved in the same
transaction as the notifications it produced: store, then act.

In PostgreSQL (`PgOutbox`, alerts/claims.py) two instances share the outbox: both enqueue the
same keys, the first insert wins, and a sender claims rows with a lease before sending them.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hallwatch.daemon.base.backoff import delay
from hallwatch.daemon.store.backend import Database, OnDatabase, Writes
from hallwatch.daemon.store.sqlite import SqliteFile

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_outbox (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,          -- the idempotency key, also sent to receivers
    channel TEXT NOT NULL,             -- wecom | sms | webhook | alertmanager
    target TEXT NOT NULL,              -- robot name, phone number, webhook name, or ''
    payload TEXT NOT NULL,             -- JSON, rendered at enqueue; holds no secret
    created REAL NOT NULL,
    due REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending',   -- pending | sent | dead
    last_error TEXT NOT NULL DEFAULT '',
    done_at REAL
);
CREATE INDEX IF NOT EXISTS alert_outbox_due ON alert_outbox (state, due);
CREATE TABLE IF NOT EXISTS alert_state (
    name TEXT PRIMARY KEY,
    body BLOB NOT NULL,
    updated REAL NOT NULL
);
-- Who acknowledged which episode, when: kept after the alert resolves, for the reports.
CREATE TABLE IF NOT EXISTS alert_acks (
    alert_id TEXT PRIMARY KEY,
    hall TEXT NOT NULL,
    alert TEXT NOT NULL,
    subject TEXT NOT NULL,
    started_at REAL NOT NULL,
    acked_by TEXT NOT NULL,
    acked_at REAL NOT NULL
);
-- What the phone page recorded with an acknowledgement (alerts/acklink.py): who from the
-- roster, which role, how many emergency windows were opened, the note.
CREATE TABLE IF NOT EXISTS alert_ack_details (
    alert_id TEXT PRIMARY KEY,
    hall TEXT NOT NULL,
    role TEXT NOT NULL,
    person_id TEXT NOT NULL,
    person TEXT NOT NULL,
    windows INTEGER NOT NULL,
    note TEXT NOT NULL,
    acked_at REAL NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class NewNotification:
    key: str
    channel: str
    target: str
    payload: dict[str, Any]


def recipient_key(event: str, route: str, target: str) -> str:
    """The idempotency key of one event's notification to one recipient: `event/route/target`
    (route is the channel, or a variant of it such as `wecom-at`). Every notification the daemon
    stores is keyed this way, so the same event never reaches the same recipient twice."""
    return f"{event}/{route}/{target}"


@dataclass(frozen=True, slots=True)
class Notification:
    seq: int
    key: str
    channel: str
    target: str
    payload: dict[str, Any]
    created: float
    due: float
    attempts: int
    state: str
    last_error: str


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int
    oldest_pending_s: float
    dead: int


def retry_at(
    now: float,
    attempts: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rand: random.Random | None = None,
) -> float:
    """When to try again after `attempts` failures: capped jittered backoff, or the server's
    Retry-After when that is later."""
    wait = delay(max(0, attempts - 1), base=base, cap=cap, rand=rand)
    if retry_after is not None:
        wait = max(wait, min(retry_after, cap))
    return now + wait


COLUMNS = "seq, key, channel, target, payload, created, due, attempts, state, last_error"


def notification(r: Sequence[Any]) -> Notification:
    return Notification(
        seq=r[0],
        key=r[1],
        channel=r[2],
        target=r[3],
        payload=json.loads(r[4]),
        created=r[5],
        due=r[6],
        attempts=r[7],
        state=r[8],
        last_error=r[9],
    )


class _OutboxFile(SqliteFile):
    SCHEMA = OUTBOX_SCHEMA
    NAME = "outbox"


# In PostgreSQL, one for all instances: the notifications and the acknowledgement log.
SHARED_TABLES = ("alert_outbox", "alert_acks", "alert_ack_details")


class Outbox(OnDatabase):
    """One connection to the outbox tables. Use `async with Outbox(path):` (SQLite)."""

    def __init__(
        self, path: str | Path = "", *, synchronous: str = "FULL", file: Database | None = None
    ) -> None:
        super().__init__(file or _OutboxFile(path, synchronous=synchronous))
        self.wake = asyncio.Event()  # set on enqueue, so the dispatcher need not poll

    async def _serialize(self, tx: Writes) -> None:
        """Before an enqueue writes: nothing here (SQLite's BEGIN IMMEDIATE already is)."""

    async def enqueue(
        self,
        notes: Sequence[NewNotification],
        *,
        now: float,
        state: tuple[str, bytes] | None = None,
    ) -> int:
        """Store notifications (and the engine state that produced them) in one transaction.

        Returns how many were new; a key already stored is ignored.
        """
        rows = [
            (n.key, n.channel, n.target, json.dumps(n.payload, ensure_ascii=False), now, now)
            for n in notes
        ]
        async with self.transaction() as tx:
            await self._serialize(tx)
            before = tx.total_changes
            await tx.executemany(
                "INSERT INTO alert_outbox"
                " (key, channel, target, payload, created, due)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                rows,
            )
            added = tx.total_changes - before
            if state is not None:
                await tx.execute(
                    "INSERT INTO alert_state VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE"
                    " SET body = excluded.body, updated = excluded.updated",
                    (state[0], state[1], now),
                )
        if added:
            self.wake.set()
        return int(added)

    async def episode_start(self, hall: str, alert: str, subject: str, since: float) -> float:
        """The start of this episode as the instances sharing the outbox know it (another may
        have begun it a tick earlier: alerts/claims.py); alone, `since` itself."""
        return (await self.episode_join(hall, alert, subject, since))[0]

    async def episode_join(
        self, hall: str, alert: str, subject: str, since: float, event_at: float | None = None
    ) -> tuple[float, bool]:
        """The start of the episode a firing belongs to, and whether another instance has
        already ended it (alerts/claims.py); alone, `since` and no."""
        return since, False

    async def episode_ended(
        self,
        hall: str,
        alert: str,
        subject: str,
        since: float,
        *,
        at: float | None = None,
        event_at: float | None = None,
        own: int = 1,
    ) -> int:
        """The episode begun at `since` resolved: the resolution's ordinal, 1 + the relapses
        before it. Alone, `own` (the engine's count, kept in its saved episode, so a restart
        numbers the same); a shared outbox counts them in the shared record, which it also
        marks ended (alerts/claims.py)."""
        return own

    async def episode_open(self, hall: str, alert: str, subject: str, since: float) -> bool:
        """Whether the episode begun at `since` is still open for the instances sharing the
        outbox (another may have resolved it); alone, this instance's engine knows: True."""
        return True

    async def episode_reopened(
        self,
        hall: str,
        alert: str,
        subject: str,
        since: float,
        *,
        at: float | None = None,
        event_at: float | None = None,
        own: int = 1,
    ) -> int:
        """The episode begun at `since` relapsed: the relapse's number. Alone, `own` (the
        engine's count); a shared outbox counts it in the shared record, open again."""
        return own

    async def peer_acks(self, alert_ids: Sequence[str]) -> dict[str, tuple[str, float]]:
        """Acknowledgements of `alert_ids` that another instance took (shared outbox: who,
        when); alone, every acknowledgement is this instance's own: none."""
        return {}

    async def load_state(self, name: str) -> bytes | None:
        async with self.db.execute("SELECT body FROM alert_state WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        return bytes(row[0]) if row else None

    async def save_state(self, name: str, body: bytes, now: float) -> None:
        await self.enqueue([], now=now, state=(name, body))

    async def record_ack(
        self,
        alert_id: str,
        hall: str,
        alert: str,
        subject: str,
        started_at: float,
        by: str,
        at: float,
    ) -> None:
        """Keep an acknowledgement for good (the first one of an episode counts)."""
        await self.write(
            "INSERT INTO alert_acks VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (alert_id, hall, alert, subject, started_at, by, at),
        )

    async def due(self, now: float, limit: int = 100) -> list[Notification]:
        """Pending notifications whose time has come, oldest first."""
        async with self.db.execute(
            f"SELECT {COLUMNS} FROM alert_outbox WHERE state = 'pending' AND due <= ?"
            " ORDER BY due, seq LIMIT ?",
            (now, limit),
        ) as cur:
            return [notification(r) for r in await cur.fetchall()]

    async def next_due(self) -> float | None:
        async with self.db.execute(
            "SELECT MIN(due) FROM alert_outbox WHERE state = 'pending'"
        ) as cur:
            row = await cur.fetchone()
        return None if row is None or row[0] is None else float(row[0])

    async def get(self, key: str) -> Notification | None:
        async with self.db.execute(
            f"SELECT {COLUMNS} FROM alert_outbox WHERE key = ?", (key,)
        ) as c:
            row = await c.fetchone()
        return notification(row) if row else None

    async def sending(self, seq: int) -> None:
        """About to send `seq` (a shared outbox notes it for the survivor; alone: nothing)."""

    async def mark_sent(self, seq: int, now: float) -> None:
        await self.write(
            "UPDATE alert_outbox SET state = 'sent', attempts = attempts + 1, done_at = ?,"
            " last_error = '' WHERE seq = ?",
            (now, seq),
        )

    async def mark_retry(self, seq: int, due: float, error: str) -> None:
        await self.write(
            "UPDATE alert_outbox SET attempts = attempts + 1, due = ?, last_error = ?"
            " WHERE seq = ? AND state = 'pending'",
            (due, error[:500], seq),
        )

    async def defer(self, seq: int, due: float) -> None:
        """Put off without counting an attempt (our own rate limit said wait)."""
        await self.write(
            "UPDATE alert_outbox SET due = ? WHERE seq = ? AND state = 'pending'", (due, seq)
        )

    async def mark_dead(self, seq: int, now: float, error: str) -> None:
        await self.write(
            "UPDATE alert_outbox SET state = 'dead', attempts = attempts + 1, done_at = ?,"
            " last_error = ? WHERE seq = ?",
            (now, error[:500], seq),
        )

    async def dead_letters(self, limit: int = 100) -> list[Notification]:
        async with self.db.execute(
            f"SELECT {COLUMNS} FROM alert_outbox WHERE state = 'dead' ORDER BY seq DESC LIMIT ?",
            (limit,),
        ) as cur:
            return [notification(r) for r in await cur.fetchall()]

    async def requeue(self, seq: int, now: float) -> bool:
        """Send a dead letter again (after ops fixed the cause)."""
        n = await self.write(
            "UPDATE alert_outbox SET state = 'pending', due = ?, created = ?, done_at = NULL"
            " WHERE seq = ? AND state = 'dead'",
            (now, now, seq),
        )
        if n:
            self.wake.set()
        return n > 0

    async def stats(self, now: float) -> OutboxStats:
        async with self.db.execute(
            "SELECT COUNT(*), MIN(created) FROM alert_outbox WHERE state = 'pending'"
        ) as cur:
            row = await cur.fetchone()
        depth, oldest = (row[0], row[1]) if row else (0, None)
        async with self.db.execute("SELECT COUNT(*) FROM alert_outbox WHERE state = 'dead'") as c:
            dead_row = await c.fetchone()
        return OutboxStats(
            depth=int(depth),
            oldest_pending_s=max(0.0, now - oldest) if oldest is not None else 0.0,
            dead=int(dead_row[0]) if dead_row else 0,
        )

    async def prune(self, before: float) -> int:
        """Forget sent notifications done before `before` (dead letters stay)."""
        return await self.write(
            "DELETE FROM alert_outbox WHERE state = 'sent' AND done_at < ?", (before,)
        )
