"""The writer lock is the file's, shared by every connection of the process (store/sqlite.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar

from hallwatch.daemon.store.backend import Steps
from hallwatch.daemon.store.sqlite import SqliteFile


class _Table(SqliteFile):
    SCHEMA = "CREATE TABLE IF NOT EXISTS t (v INTEGER);"
    BUSY_MS: ClassVar[int] = 100  # SQLite's own wait: far shorter than the hold below


def test_a_writer_held_past_the_busy_timeout_does_not_fail_another_connection(
    tmp_path: Path,
) -> None:
    """While one connection's transaction stays open across awaits for longer than SQLite's
    busy timeout (the event loop busy elsewhere), a second connection to the same file waits
    for its turn instead of failing with "database is locked" (seen in the outbox and the
    complaint store at 500 halls); both rows are stored."""

    async def run() -> list[int]:
        db = tmp_path / "w.db"
        async with _Table(db) as a, _Table(db) as b:
            async with a.transaction() as tx:
                await tx.execute("INSERT INTO t VALUES (1)")
                other = asyncio.create_task(b.write("INSERT INTO t VALUES (2)"))
                await asyncio.sleep(0.5)  # five busy timeouts
                assert not other.done()
            await other
            async with a.db.execute("SELECT v FROM t ORDER BY v") as cur:
                return [r[0] for r in await cur.fetchall()]

    assert asyncio.run(run()) == [1, 2]


def test_files_and_event_loops_have_their_own_writer_lock(tmp_path: Path) -> None:
    """Two files do not wait for each other, and a lock from a closed event loop is not
    reused by the next one (each test's asyncio.run)."""

    async def run() -> list[int]:
        async with _Table(tmp_path / "a.db") as a, _Table(tmp_path / "b.db") as b:
            async with a.transaction() as tx:
                await tx.execute("INSERT INTO t VALUES (1)")
                # b's write finishes while a's transaction is still open (a shared lock would
                # make this wait for ever: wait_for raises TimeoutError and the test fails).
                await asyncio.wait_for(b.write("INSERT INTO t VALUES (2)"), 5)
                async with b.db.execute("SELECT count(*) FROM t WHERE v = 2") as cur:
                    row = await cur.fetchone()
            assert row is not None
            return [int(row[0])]

    assert asyncio.run(run()) == [1]
    assert asyncio.run(run()) == [2]  # a new event loop, a new lock: the second run writes too


def test_a_transaction_given_as_steps_is_all_or_nothing_and_takes_its_turn(
    tmp_path: Path,
) -> None:
    """`run(steps)` (one hand-over to SQLite's thread): the statements' answers reach the
    steps, a step that raises leaves nothing of its transaction, and while another connection
    holds the writer lock the steps wait their turn instead of failing."""

    def steps(values: list[int], fail: bool) -> Steps[int]:
        for v in values:
            yield ("exec", "INSERT INTO t VALUES (?)", (v,))
        row = yield ("one", "SELECT count(*) FROM t", ())
        if fail:
            raise ValueError("a step failed")
        return int(row[0])

    async def run() -> tuple[int, list[int]]:
        db = tmp_path / "s.db"
        async with _Table(db) as a, _Table(db) as b:
            counted = await a.run(steps([1, 2], fail=False))
            try:
                await a.run(steps([3, 4], fail=True))
            except ValueError:
                pass
            async with b.transaction() as tx:
                await tx.execute("INSERT INTO t VALUES (5)")
                waiting = asyncio.create_task(a.run(steps([6], fail=False)))
                await asyncio.sleep(0.3)  # three busy timeouts
                assert not waiting.done()
            await waiting
            async with a.db.execute("SELECT v FROM t ORDER BY v") as cur:
                return counted, [r[0] for r in await cur.fetchall()]

    assert asyncio.run(run()) == (2, [1, 2, 5, 6])
