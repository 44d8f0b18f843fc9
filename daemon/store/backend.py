"""What the event store and the outbox need of a database, whichever it is: the smallest surface
that `sqlite.SqliteFile` and `postgres.PgFile` both offer.

SQL is written once, in the subset both engines read: `?` placeholders (the PostgreSQL side turns
them into `%s`), `INSERT ... ON CONFLICT ... DO NOTHING | DO UPDATE SET ... = excluded....`, no
engine-specific functions. A schema is written once in SQLite's words; `postgres.to_postgres`
gives PostgreSQL's.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, Literal, Protocol, Self, TypeVar

_READS = ("SELECT", "WITH", "PRAGMA", "EXPLAIN", "SHOW")


class StoreError(RuntimeError):
    """The event store cannot take a batch (disk full, I/O error, the database gone); the
    message names the file or the URL. `hallwatch run` stops on it: nothing not stored was
    acknowledged, the broker keeps it for the next start."""


def check_read(sql: str) -> None:
    """Refuse a write where only reads belong (a write needs `transaction()`)."""
    head = sql.lstrip()[:7].upper()
    if not head.startswith(_READS) or (head.startswith("PRAGMA") and "=" in sql):
        raise RuntimeError(f"a write outside transaction(): {sql[:60]!r}")


def check_tx(sql: str) -> None:
    """Refuse a statement that would begin or end the transaction `transaction()` owns."""
    head = sql.lstrip()[:9].upper()
    if head.startswith(("BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE")):
        raise RuntimeError("transaction() begins and ends the transaction")


class Reads(Protocol):
    """Queries outside a transaction: `async with db.execute(sql, params) as cur:`."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...


class Writes(Protocol):
    """The statements of one transaction."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    @property
    def total_changes(self) -> int: ...


T = TypeVar("T")
# One statement of a transaction given as steps: ("all" | "one", sql, params) answers with the
# rows or the first row, ("exec", sql, params) and ("many", sql, rows) with None.
Statement = tuple[Literal["all", "one", "exec", "many"], str, Any]
Steps = Generator[Statement, Any, T]


async def run_steps(tx: Writes, steps: Steps[T]) -> T:
    """Drive `steps` through one transaction's statements, each awaited in turn."""
    answer: Any = None
    while True:
        try:
            op, sql, params = steps.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        answer = None
        if op == "exec":
            await tx.execute(sql, params)
        elif op == "many":
            await tx.executemany(sql, params)
        elif op == "all":
            answer = await tx.fetchall(sql, params)
        else:
            answer = await tx.fetchone(sql, params)


class Database(Protocol):
    """One open database: `async with`, reads through `db`, writes in `transaction()`.

    `errors` are the exceptions the engine raises for a failed statement or commit (a full
    disk, a lost connection): the stores turn them into their own error."""

    path: str
    shared: bool  # other daemons may write it too (PostgreSQL); a SQLite file is this one's
    errors: tuple[type[Exception], ...]
    missing: tuple[type[Exception], ...]  # what a query on a table not there raises

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    @property
    def db(self) -> Reads: ...

    def transaction(self) -> AbstractAsyncContextManager[Writes]: ...

    async def run(self, steps: Steps[T]) -> T: ...

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int: ...


class Transactional(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Writes]: ...


async def write_one(tx_of: Transactional, sql: str, params: Sequence[Any]) -> int:
    """One statement in its own transaction; returns the rows it changed."""
    async with tx_of.transaction() as tx:
        cur = await tx.execute(sql, params)
        return int(cur.rowcount)


class Closes(Protocol):
    async def close(self) -> None: ...


H = TypeVar("H", bound=Closes)


class FileBase(Generic[H]):
    """What both engines' files share: the handle (a connection, a pool) while open, closed on
    the way out, and a write of one statement in its own transaction."""

    name: str
    _handle: H | None = None

    def _open(self) -> H:
        if self._handle is None:
            raise RuntimeError(f"{self.name} is not open")
        return self._handle

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            await self._handle.close()
            self._handle = None

    def transaction(self) -> AbstractAsyncContextManager[Writes]:
        raise NotImplementedError

    async def run(self, steps: Steps[T]) -> T:
        """A transaction given as `steps` (its statements, each answered in turn), committed
        when they end, rolled back if one raises."""
        async with self.transaction() as tx:
            return await run_steps(tx, steps)

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One statement in its own transaction; returns the rows it changed."""
        return await write_one(self, sql, params)


class OnDatabase:
    """A store over one `Database` (SQLite or PostgreSQL): `async with` opens it, then runs
    `_ready()`; `db`, `transaction()` and `write()` are the database's."""

    def __init__(self, file: Database) -> None:
        self.file = file
        self.path = file.path
        self.shared = file.shared

    async def __aenter__(self) -> Self:
        await self.file.__aenter__()
        try:
            await self._ready()
        except BaseException as err:
            await self.file.__aexit__(type(err), err, err.__traceback__)
            raise
        return self

    async def _ready(self) -> None:
        """Checks after the schema is in place (none by default)."""

    async def __aexit__(self, *exc: Any) -> None:
        await self.file.__aexit__(*exc)

    @property
    def db(self) -> Reads:
        return self.file.db

    def transaction(self) -> AbstractAsyncContextManager[Writes]:
        return self.file.transaction()

    async def write(self, sql: str, params: Sequence[Any] = ()) -> int:
        return await write_one(self, sql, params)
