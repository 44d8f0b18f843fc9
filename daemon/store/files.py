"""The database a store lives in, by `store.url`: PostgreSQL when it is set, else the SQLite
file `store.path`. One schema text serves both (store/backend.py).

In PostgreSQL the tables a store names in `shared` live in the schema every instance of the
centre reads (`hallwatch`): the staff registers, the outbox and the acknowledgement log, which a
pair or the shards of a province share. The rest live in the instance's own schema
(`hallwatch_<instance>`): its event log, its alert engine's state, and the cursors over them.
docs/decisions.md says which table is which, and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar, Self

from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.store.backend import Database, OnDatabase
from hallwatch.daemon.store.sqlite import SqliteFile


def open_database(
    settings: StoreSettings, schema: str, *, name: str, shared: Iterable[str] = ()
) -> Database:
    """The (unopened) database of a store with `schema`: `async with` it, or hand it to an
    `OnDatabase` store."""
    if settings.url:
        # Imported here: a SQLite daemon never loads psycopg.
        from hallwatch.daemon.store.postgres import PgFile

        return PgFile(
            settings.url,
            instance=settings.instance_name(),
            schema=schema,
            shared=shared,
            name=name,
        )
    return SqliteFile(settings.path, synchronous=settings.synchronous, schema=schema, name=name)


class OnSchema(OnDatabase):
    """A store of one schema (`SCHEMA`, its tables named `SHARED` the centre's in PostgreSQL):
    `async with Sub(path):` on a SQLite file, or `Sub.open(settings.store)` by `store.url`."""

    SCHEMA: ClassVar[str] = ""
    NAME: ClassVar[str] = "database"
    SHARED: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, path: str | Path = "", *, synchronous: str = "FULL", file: Database | None = None
    ) -> None:
        super().__init__(
            file or SqliteFile(path, synchronous=synchronous, schema=self.SCHEMA, name=self.NAME)
        )

    @classmethod
    def open(cls, settings: StoreSettings) -> Self:
        return cls(file=open_database(settings, cls.SCHEMA, name=cls.NAME, shared=cls.SHARED))
