"""One aiosqlite connection to a SQLite file in WAL mode with its schema: the shared edge of
the event store, the alert outbox, the complaint store and the call-back register."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

import aiosqlite


class SqliteFile:
    """`async with Subclass(path):` opens the file (WAL, `synchronous`, a busy timeout), creates
    `SCHEMA`, runs `_ready()`, and closes the connection on the way out or on any failure."""

    SCHEMA: ClassVar[str] = ""
    NAME: ClassVar[str] = "database"

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = str(path)
        self._synchronous = synchronous
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()  # one transaction at a time on this connection

    async def __aenter__(self) -> Self:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        self._db = db
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"PRAGMA synchronous={self._synchronous}")
            # Four connections write this file (events, outbox, complaints, call-backs), one at
            # a time: under a heavy ingest, wait rather than fail the side writers.
            await db.execute("PRAGMA busy_timeout=30000")
            await db.executescript(self.SCHEMA)
            await self._ready()
        except BaseException:
            self._db = None
            await db.close()
            raise
        return self

    async def _ready(self) -> None:
        """Checks or migrations after the schema is in place (none by default)."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError(f"{self.NAME} is not open")
        return self._db
