"""Tests of hallwatch.daemon.store.events: the SQLite event log on a real file."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from hallwatch.daemon.store.events import NewEvent, NewReject, Store


def ev(hall: str, id_: str, ts: float = 1.0, payload: bytes | None = None) -> NewEvent:
    body = payload if payload is not None else f'{{"id":"{id_}"}}'.encode()
    return NewEvent(hall, id_, f"hall/{hall}/ticket", ts, ts + 0.1, body)


async def all_events(store: Store, after: int = 0) -> list[tuple[int, str, bytes]]:
    return [row async for row in store.events_after(after)]


async def test_fresh_events_are_stored_in_order(tmp_path: Path) -> None:
    """A batch of new events is all fresh, and events_after returns them in arrival order."""
    async with Store(tmp_path / "ev.db") as store:
        fresh, upto = await store.commit_batch([ev("h1", "b", 5.0), ev("h1", "a", 1.0)])
        assert fresh == [True, True]
        assert upto == 2
        fresh, upto = await store.commit_batch([ev("h1", "c", 0.5)])
        assert (fresh, upto) == ([True], 3)
        rows = await all_events(store)
    assert [r[0] for r in rows] == [1, 2, 3]
    assert [r[2] for r in rows] == [b'{"id":"b"}', b'{"id":"a"}', b'{"id":"c"}']
    assert rows[0][1] == "hall/h1/ticket"


async def test_duplicates_in_db_and_in_batch_are_stored_once(tmp_path: Path) -> None:
    """A repeat of a stored id, or of an earlier one in the same batch, is not fresh."""
    async with Store(tmp_path / "ev.db") as store:
        await store.commit_batch([ev("h1", "x")])
        fresh, upto = await store.commit_batch(
            [ev("h1", "x"), ev("h1", "y"), ev("h1", "y", payload=b"again"), ev("h1", "z")]
        )
        assert fresh == [False, True, False, True]
        assert upto == 3
        assert await store.count_events() == 3
        rows = await all_events(store)
    assert [r[2] for r in rows] == [b'{"id":"x"}', b'{"id":"y"}', b'{"id":"z"}']


async def test_only_duplicates_changes_nothing(tmp_path: Path) -> None:
    """A batch of nothing but duplicates stores nothing and reports the same last seq."""
    async with Store(tmp_path / "ev.db") as store:
        _, upto = await store.commit_batch([ev("h1", "a"), ev("h1", "b")])
        fresh, upto2 = await store.commit_batch([ev("h1", "b"), ev("h1", "a")])
        assert fresh == [False, False]
        assert upto2 == upto == await store.last_seq() == 2


async def test_same_id_in_two_halls_is_two_events(tmp_path: Path) -> None:
    """The idempotency key is (hall, id): the same id from two halls is kept twice."""
    async with Store(tmp_path / "ev.db") as store:
        fresh, _ = await store.commit_batch([ev("h1", "tm:1"), ev("h2", "tm:1")])
        assert fresh == [True, True]
        assert await store.count_events() == 2


async def test_ids_with_slashes_do_not_collide(tmp_path: Path) -> None:
    """An id containing '/' cannot be confused with another hall's id."""
    async with Store(tmp_path / "ev.db") as store:
        fresh, _ = await store.commit_batch([ev("h1", "a/b"), ev("h1.a", "b"), ev("h1", "a")])
        assert fresh == [True, True, True]


async def test_large_batch_dedupes_across_chunks(tmp_path: Path) -> None:
    """A batch larger than one SQL IN-chunk still finds every stored duplicate."""
    async with Store(tmp_path / "ev.db") as store:
        await store.commit_batch([ev("h1", f"e{i}") for i in range(0, 1200, 2)])
        batch = [ev("h1", f"e{i}") for i in range(1200)]
        fresh, upto = await store.commit_batch(batch)
        assert fresh == [i % 2 == 1 for i in range(1200)]
        assert upto == 1200


async def test_events_after_pages_and_skips(tmp_path: Path) -> None:
    """events_after starts after the given seq and pages through in order."""
    async with Store(tmp_path / "ev.db") as store:
        await store.commit_batch([ev("h1", f"e{i}") for i in range(25)])
        rows = [r async for r in store.events_after(10, chunk=4)]
    assert [r[0] for r in rows] == list(range(11, 26))


async def test_rejects_are_stored_cut_to_4_kib(tmp_path: Path) -> None:
    """Rejected inputs are kept in the same transaction, their payload cut to 4 KiB."""
    async with Store(tmp_path / "ev.db") as store:
        reject = NewReject(1.0, "hall/h1/ticket", "bad_json", "truncated", b"x" * 10000)
        await store.commit_batch([ev("h1", "a")], [reject])
        async with store.db.execute("SELECT reason, length(payload) FROM rejects") as cur:
            rows = list(await cur.fetchall())
    assert [tuple(r) for r in rows] == [("bad_json", 4096)]


async def test_snapshots_keep_the_newest_three(tmp_path: Path) -> None:
    """Saving a fourth snapshot drops the oldest; latest_snapshot is the highest upto."""
    async with Store(tmp_path / "ev.db") as store:
        assert await store.latest_snapshot() is None
        for upto in (10, 40, 20, 30):
            await store.save_snapshot(upto, float(upto), f"s{upto}".encode())
        assert await store.latest_snapshot() == (40, b"s40")
        async with store.db.execute("SELECT upto FROM snapshots ORDER BY upto") as cur:
            kept = [r[0] for r in await cur.fetchall()]
    assert kept == [20, 30, 40]


async def test_data_survives_reopening(tmp_path: Path) -> None:
    """Events, dedupe keys and snapshots are still there after closing and reopening the file."""
    path = tmp_path / "sub" / "ev.db"
    async with Store(path) as store:
        await store.commit_batch([ev("h1", "a"), ev("h1", "b")])
        await store.save_snapshot(2, 100.0, b"snap")
    async with Store(path) as store:
        assert await store.count_events() == 2
        assert await store.latest_snapshot() == (2, b"snap")
        fresh, upto = await store.commit_batch([ev("h1", "a"), ev("h1", "c")])
        assert fresh == [False, True]
        assert upto == 3
        assert [r[0] for r in await all_events(store, 2)] == [3]


async def test_wrong_schema_version_refuses_to_open(tmp_path: Path) -> None:
    """A database of another schema version is refused, and its connection closed."""
    path = tmp_path / "ev.db"
    async with Store(path) as store:
        await store.write("UPDATE meta SET value='99' WHERE key='schema'")
    threads = threading.active_count()
    refused = Store(path)  # kept referenced, so garbage collection cannot hide a leak
    with pytest.raises(RuntimeError, match="schema 99"):
        async with refused:
            pass
    for _ in range(100):  # the refused connection is closed: its worker thread ends
        if threading.active_count() <= threads:
            break
        await asyncio.sleep(0.01)
    assert threading.active_count() <= threads


async def test_closed_store_refuses_use(tmp_path: Path) -> None:
    """Using the store outside its context is an error, not a silent no-op."""
    store = Store(tmp_path / "ev.db")
    with pytest.raises(RuntimeError, match="not open"):
        await store.commit_batch([ev("h1", "a")])


def test_daemon_snapshot_round_trips_state_and_estimator() -> None:
    """The snapshot row holds the state and the estimator's learned data, and both come back."""
    from hallwatch.daemon.core.state import HallsState, encode
    from hallwatch.daemon.estimate.model import Estimator
    from hallwatch.daemon.main import decode_snapshot, encode_snapshot

    state = HallsState(applied=7)
    est = Estimator()
    est.learned.cancelled = 3
    got_state, got_est = decode_snapshot(encode_snapshot(state, est))
    assert got_state is not None and encode(got_state) == encode(state)
    assert got_est is not None and Estimator.restore(got_est).learned.cancelled == 3
