"""The shared SQLite edge: one writer discipline per connection, and private files."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
from hallwatch.daemon.store.events import NewEvent, Store


def _event(i: int) -> NewEvent:
    return NewEvent("h1", f"e{i}", "hall/h1/ticket", 1.0e9 + i, 1.0e9 + i, b"{}")


def test_snapshot_overlapping_an_ingest_commit_waits_its_turn(tmp_path: Path) -> None:
    """A snapshot saved while a batch commits on the same connection (the daemon's periodic
    snapshot amid ingest) neither fails nor loses the batch: every transaction takes the lock."""

    async def go() -> tuple[int, list[int]]:
        async with Store(tmp_path / "h.db") as store:
            for round_ in range(20):
                batch = [_event(round_ * 50 + i) for i in range(50)]
                await asyncio.gather(
                    store.commit_batch(batch),
                    store.save_snapshot(round_, 0.0, b"x" * 1000),
                    store.commit_batch([_event(10_000 + round_)]),
                )
            snaps = await store.latest_snapshot()
            return await store.count_events(), [snaps[0]] if snaps else []

    count, snaps = asyncio.run(go())
    assert count == 20 * 51
    assert snaps == [19]


def test_database_files_are_private(tmp_path: Path) -> None:
    """A new database folder is 0700 and the database with its -wal and -shm files 0600 (they
    hold customers' phone numbers), whatever the process umask."""
    folder = tmp_path / "var" / "hallwatch"
    old = os.umask(0o022)
    try:

        async def go() -> None:
            async with Store(folder / "h.db") as store:
                await store.commit_batch([_event(1)])
                files = sorted(p.name for p in folder.iterdir())
                assert files == ["h.db", "h.db-shm", "h.db-wal"]
                for p in folder.iterdir():
                    assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name

        asyncio.run(go())
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "h.db").stat().st_mode) == 0o600


def test_existing_database_is_made_private(tmp_path: Path) -> None:
    """A database created world-readable by an older hallwatch is narrowed to 0600 on open;
    an existing folder the operator chose is left as it is."""
    db = tmp_path / "h.db"
    db.write_bytes(b"")
    db.chmod(0o644)
    mode_before = stat.S_IMODE(tmp_path.stat().st_mode)

    async def go() -> None:
        async with Store(db):
            pass

    asyncio.run(go())
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(tmp_path.stat().st_mode) == mode_before


def test_a_write_outside_transaction_is_refused(tmp_path: Path) -> None:
    """No writer can bypass the lock: `db` refuses anything but a query, and a transaction's
    statements cannot begin or end it themselves; a failing block rolls back."""

    async def go() -> int:
        async with Store(tmp_path / "h.db") as store:
            with pytest.raises(RuntimeError, match="outside transaction"):
                store.db.execute("INSERT INTO meta VALUES ('x', 'y')")
            with pytest.raises(RuntimeError, match="outside transaction"):
                store.db.execute("PRAGMA journal_mode=DELETE")
            async with store.transaction() as tx:
                for sql in ("BEGIN", "COMMIT", "rollback", "  SAVEPOINT s"):
                    with pytest.raises(RuntimeError):
                        await tx.execute(sql)
            with pytest.raises(ZeroDivisionError):
                async with store.transaction() as tx:
                    await tx.execute("INSERT INTO meta VALUES ('x', 'y')")
                    1 / 0  # noqa: B018
            async with store.db.execute("SELECT count(*) FROM meta WHERE key = 'x'") as cur:
                row = await cur.fetchone()
            return int(row[0])

    assert asyncio.run(go()) == 0
