"""One aiosqlite connection to a SQLite file in WAL mode with its schema: the shared edge of
the event store, the alert outbox, the complaint store and the call-back register.

One writer discipline: every write on a connection happens inside `transaction()`, which holds
the file's writer lock from BEGIN to COMMIT, so two coroutines can never interleave their
statements in one transaction (the periodic snapshot once began a transaction inside an ingest
commit and killed the daemon). `db` only reads: a write through it is refused at once.

The writer lock is one per file and event loop, shared by every connection to the file (events,
outbox, complaints, call-backs): their transactions take turns in asyncio, never inside SQLite.
A transaction spans several awaits, so with a lock per connection, a writer holding SQLite's
lock while the event loop was busy elsewhere made the others' BEGIN wait in SQLite's busy
handler, and under a saturated loop (500 halls) give up after the busy timeout with "database is
locked" (seen in the outbox and the complaint store). The busy timeout now only concerns other
processes (the `hallwatch` commands that write).

The database holds customers' phone numbers: a folder we create is 0700, and the database file
0600 (SQLite gives its -wal and -shm files the database's mode), whatever the umask.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar, Self

import aiosqlite
from hallwatch.daemon.store.backend import FileBase, Steps, T, check_read, check_tx

log = logging.getLogger("hallwatch.sqlite")

FILE_MODE = 0o600
DIR_MODE = 0o700


class Reader:
    """The connection as readers see it: queries only (a write needs `transaction()`)."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        check_read(sql)
        return self._db.execute(sql, params)


class Tx:
    """The statements of one transaction; it is begun and ended by `transaction()` alone."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    _check = staticmethod(check_tx)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Cursor:
        self._check(sql)
        return await self._db.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._check(sql)
        await self._db.executemany(sql, rows)

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._check(sql)
        async with self._db.execute(sql, params) as cur:
            return await cur.fetchone()

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self._check(sql)
        async with self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    @property
    def total_changes(self) -> int:
        return self._db.total_changes


def _private_file(path: Path) -> None:
    """Create `path` 0600 if it is missing; narrow an existing one (from an older hallwatch)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, FILE_MODE))
        os.chmod(path, FILE_MODE)  # the umask may have taken bits away; never added any
    except FileExistsError:
        try:
            if stat.S_IMODE(path.stat().st_mode) & 0o077:
                os.chmod(path, FILE_MODE)
        except PermissionError:
            log.warning("%s is readable by others and not ours to change: chmod 600 it", path)


def _run_here(conn: sqlite3.Connection, steps: Steps[T]) -> T:
    """`SqliteFile.run` in the connection's own thread: BEGIN IMMEDIATE, the steps, COMMIT
    (ROLLBACK if anything raises)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        answer: Any = None
        while True:
            try:
                op, sql, params = steps.send(answer)
            except StopIteration as done:
                result: T = done.value
                break
            check_tx(sql)
            answer = None
            if op == "many":
                conn.executemany(sql, params)
            elif op == "exec":
                conn.execute(sql, params)
            else:
                cur = conn.execute(sql, params)
                answer = cur.fetchall() if op == "all" else cur.fetchone()
        conn.execute("COMMIT")
        return result
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        raise


_WRITERS: dict[tuple[int, str], tuple[asyncio.AbstractEventLoop, asyncio.Lock]] = {}


def _writer_lock(path: str) -> asyncio.Lock:
    """The writer lock of `path` in the running event loop (a private one for ":memory:")."""
    if path == ":memory:":
        return asyncio.Lock()
    loop = asyncio.get_running_loop()
    key = (id(loop), os.path.realpath(path))
    hit = _WRITERS.get(key)
    if hit is None or hit[0] is not loop:
        for k in [k for k, (lp, _) in _WRITERS.items() if lp.is_closed()]:
            del _WRITERS[k]
        hit = _WRITERS[key] = (loop, asyncio.Lock())
    return hit[1]


class SqliteFile(FileBase[aiosqlite.Connection]):
    """`async with SqliteFile(path, schema=...):` (or a subclass naming its `SCHEMA`) opens the
    file (WAL, `synchronous`, a busy timeout), creates the schema, runs `_ready()`, and closes
    the connection on the way out or on any failure."""

    SCHEMA: ClassVar[str] = ""
    NAME: ClassVar[str] = "database"
    shared = False
    BUSY_MS: ClassVar[int] = 30000  # another process writing: wait this long, then fail
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    missing: tuple[type[Exception], ...] = (sqlite3.OperationalError,)

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        schema: str | None = None,
        name: str | None = None,
    ) -> None:
        self.path = str(path)
        self.name = name or self.NAME
        self._schema = self.SCHEMA if schema is None else schema
        self._synchronous = synchronous
        self._lock: asyncio.Lock | None = None  # the file's writer lock, once open

    async def __aenter__(self) -> Self:
        if self.path != ":memory:":
            path = Path(self.path)
            if not path.parent.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(path.parent, DIR_MODE)
            for p in (path, Path(self.path + "-wal"), Path(self.path + "-shm")):
                if p == path or p.exists():
                    _private_file(p)
        self._lock = _writer_lock(self.path)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        self._handle = db
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"PRAGMA synchronous={self._synchronous}")
            # Our own connections take turns under the writer lock; another process writing
            # (a `hallwatch` command) is waited for this long.
            await db.execute(f"PRAGMA busy_timeout={int(self.BUSY_MS)}")
            await db.executescript(self._schema)
            await self._ready()
        except BaseException:
            self._handle = None
            await db.close()
            raise
        return self

    async def _ready(self) -> None:
        """Checks or migrations after the schema is in place (none by default)."""

    @property
    def db(self) -> Reader:
        """For queries; every write goes through `transaction()`."""
        return Reader(self._open())

    async def run(self, steps: Steps[T]) -> T:
        """The transaction `steps` in one hand-over to the connection's thread, under the
        writer lock. Statement by statement, each one was a hand-over and back (a turn of the
        event loop, and the GIL taken back from a busy loop): seven for an ingest batch, most
        of an event's way in at 1,000 events/s (#14)."""
        db = self._open()
        assert self._lock is not None
        async with self._lock:
            # aiosqlite's own queue to its thread (`_execute`: what each of its calls uses).
            return await db._execute(_run_here, db._conn, steps)  # type: ignore[no-untyped-call,no-any-return]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """`async with file.transaction() as tx:` BEGIN IMMEDIATE under the file's writer lock,
        COMMIT when the block ends, ROLLBACK if it raises (or if COMMIT fails)."""
        db = self._open()
        assert self._lock is not None
        async with self._lock:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(db)
                await db.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (a full disk); then there is nothing to do.
                if db.in_transaction:
                    try:
                        await db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise
