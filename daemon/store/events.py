"""The durable event log: SQLite in WAL mode through aiosqlite, or PostgreSQL (`store.url`).

Every accepted event is stored once, raw (topic and payload bytes, as it came off the wire),
keyed by (hall, id); the state is rebuilt by parsing them again in arrival order (`seq`).
Rejected inputs are kept too (payload cut to 4 KiB) so ops can see what a device sent.
Snapshots of the state, tagged with the last `seq` they include, keep restarts fast.
The SQL is the same on both engines (store/backend.py); in PostgreSQL each instance keeps its
own log (store/postgres.py), so `(hall, id)` is the idempotency key within a daemon's log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.store.backend import Database, OnDatabase, Steps, StoreError
from hallwatch.daemon.store.files import open_database
from hallwatch.daemon.store.sqlite import SqliteFile

SCHEMA_VERSION = 1
__all__ = ["NewEvent", "NewReject", "Store", "StoreError", "open_store"]
_IN_CHUNK = 400  # bound on SQL variables per statement
_ROW_CHUNK = 150  # rows per INSERT (6 variables a row: 900, under SQLite's old bound of 999)
_KEEP_SNAPSHOTS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,          -- hall '/' id: the idempotency key
    hall TEXT NOT NULL,
    topic TEXT NOT NULL,
    ts REAL NOT NULL,                  -- event time, epoch seconds
    received REAL NOT NULL,            -- arrival time at the daemon
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_hall_ts ON events (hall, ts);
CREATE TABLE IF NOT EXISTS rejects (
    seq INTEGER PRIMARY KEY,
    received REAL NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    upto INTEGER PRIMARY KEY,          -- state includes every event with seq <= upto
    created REAL NOT NULL,
    body BLOB NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class NewEvent:
    hall: str
    id: str
    topic: str
    ts: float
    received: float
    payload: bytes


@dataclass(frozen=True, slots=True)
class NewReject:
    received: float
    topic: str
    reason: str
    detail: str
    payload: bytes


def _values(rows: Sequence[Sequence[Any]]) -> str:
    return ",".join(["(" + ",".join("?" * len(rows[0])) + ")"] * len(rows))


def _batch_steps(
    events: Sequence[NewEvent], rejects: Sequence[NewReject], fresh: list[bool]
) -> Steps[tuple[list[bool], int]]:
    """`commit_batch`'s transaction as steps (one hand-over to SQLite's thread): which keys are
    stored already, the new events and the rejects, each in multi-row INSERTs, the last seq.
    The duplicate check is inside the transaction: no other writer can store one of these
    keys between the check and the insert."""
    keys = [f"{e.hall}/{e.id}" for e in events]
    seen: set[str] = set()
    for i in range(0, len(keys), _IN_CHUNK):
        chunk = keys[i : i + _IN_CHUNK]
        found = yield (
            "all",
            f"SELECT key FROM events WHERE key IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        seen.update(r[0] for r in found)
    rows = []
    for key, e in zip(keys, events, strict=True):
        is_new = key not in seen
        fresh.append(is_new)
        if is_new:
            seen.add(key)
            rows.append((key, e.hall, e.topic, e.ts, e.received, e.payload))
    for i in range(0, len(rows), _ROW_CHUNK):
        part = rows[i : i + _ROW_CHUNK]
        sql = "INSERT INTO events (key, hall, topic, ts, received, payload) VALUES "
        yield ("exec", sql + _values(part), [x for row in part for x in row])
    bad = [(r.received, r.topic, r.reason, r.detail, r.payload[:4096]) for r in rejects]
    for i in range(0, len(bad), _ROW_CHUNK):
        cut = bad[i : i + _ROW_CHUNK]
        sql = "INSERT INTO rejects (received, topic, reason, detail, payload) VALUES "
        yield ("exec", sql + _values(cut), [x for row in cut for x in row])
    row = yield ("one", "SELECT coalesce(max(seq), 0) FROM events", ())
    return fresh, int(row[0]) if row else 0


def _snapshot_steps(upto: int, created: float, body: bytes) -> Steps[None]:
    """`save_snapshot`'s transaction as steps: one hand-over to SQLite's thread, so the
    ingest commit waiting for the writer lock waits for one hand-over, not three."""
    yield (
        "exec",
        "INSERT INTO snapshots (upto, created, body) VALUES (?, ?, ?) ON CONFLICT (upto)"
        " DO UPDATE SET created = excluded.created, body = excluded.body",
        (upto, created, body),
    )
    yield (
        "exec",
        "DELETE FROM snapshots WHERE upto NOT IN"
        " (SELECT upto FROM snapshots ORDER BY upto DESC LIMIT ?)",
        (_KEEP_SNAPSHOTS,),
    )


class _EventsFile(SqliteFile):
    SCHEMA = _SCHEMA
    NAME = "store"


class Store(OnDatabase):
    """One writer's connection to the event database. Use `async with Store(path):` (SQLite),
    or `Store.postgres(url, instance=...)`; `open_store(settings.store)` picks by `store.url`."""

    def __init__(
        self, path: str | Path = "", *, synchronous: str = "FULL", file: Database | None = None
    ) -> None:
        super().__init__(file or _EventsFile(path, synchronous=synchronous))

    @classmethod
    def postgres(cls, url: str, *, instance: str) -> Store:
        # Imported here: a SQLite daemon never loads psycopg.
        from hallwatch.daemon.store.postgres import PgFile

        return cls(file=PgFile(url, instance=instance, schema=_SCHEMA, name="store"))

    async def _ready(self) -> None:
        db = self.db
        async with db.execute("SELECT value FROM meta WHERE key='schema'") as cur:
            row = await cur.fetchone()
        if row is None:
            await self.write("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) != SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path}: schema {row[0]}, this hallwatch needs {SCHEMA_VERSION}"
            )

    async def commit_batch(
        self, events: Sequence[NewEvent], rejects: Sequence[NewReject] = ()
    ) -> tuple[list[bool], int]:
        """Store a batch in one transaction.

        Returns, aligned with `events`, whether each was new (False: a duplicate of a stored
        event or of an earlier one in the batch), and the highest `seq` now stored. When this
        returns, the batch is durable: only then may the broker be acknowledged.
        """
        fresh: list[bool] = []
        try:
            return await self.file.run(_batch_steps(events, rejects, fresh))
        except self.file.errors as err:
            # Nothing of this batch is acknowledged: the broker keeps it for the next start.
            raise StoreError(f"event store {self.path}: {err}") from err

    async def last_seq(self) -> int:
        async with self.db.execute("SELECT coalesce(max(seq), 0) FROM events") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def count_events(self) -> int:
        async with self.db.execute("SELECT count(*) FROM events") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def events_after(
        self, seq: int, chunk: int = 5000
    ) -> AsyncIterator[tuple[int, str, bytes]]:
        """(seq, topic, payload) of every stored event after `seq`, in arrival order."""
        last = seq
        while True:
            async with self.db.execute(
                "SELECT seq, topic, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, chunk),
            ) as cur:
                rows = list(await cur.fetchall())
            if not rows:
                return
            for row in rows:
                yield int(row[0]), str(row[1]), bytes(row[2])
            last = int(rows[-1][0])

    async def latest_snapshot(self) -> tuple[int, bytes] | None:
        async with self.db.execute(
            "SELECT upto, body FROM snapshots ORDER BY upto DESC LIMIT 1"
        ) as cur:
            row = await cur.fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    async def save_snapshot(self, upto: int, created: float, body: bytes) -> None:
        await self.file.run(_snapshot_steps(upto, created, body))

    async def clear_snapshots(self) -> None:
        await self.write("DELETE FROM snapshots")


def open_store(settings: StoreSettings) -> Store:
    """The event store `settings` name: PostgreSQL when `url` is set (this instance's own log),
    else the SQLite file."""
    return Store(file=open_database(settings, _SCHEMA, name="store"))
