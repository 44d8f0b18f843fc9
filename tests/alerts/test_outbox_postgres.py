"""The outbox in PostgreSQL shared by two instances: one row a key, claims with a lease that
a live sender renews and a survivor takes over (alerts/claims.py)."""

from __future__ import annotations

import asyncio
import time

from hallwatch.alerts.claims import PgOutbox, open_outbox
from hallwatch.alerts.outbox import NewNotification
from hallwatch.daemon.config.sections import StoreSettings


def notes(n: int) -> list[NewNotification]:
    return [NewNotification(f"ev{i}/wecom/sup", "wecom", "sup", {"i": i}) for i in range(n)]


async def test_two_instances_enqueue_one_row_a_key(pg_url: str) -> None:
    """The same notifications enqueued by two instances are stored once; each keeps its own
    engine state; an acknowledgement is shared."""
    async with PgOutbox(pg_url, instance="a") as a, PgOutbox(pg_url, instance="b") as b:
        now = time.time()
        assert await a.enqueue(notes(3), now=now, state=("engine", b"state-a")) == 3
        assert await b.enqueue(notes(4), now=now, state=("engine", b"state-b")) == 1
        assert (await a.stats(now)).depth == (await b.stats(now)).depth == 4
        assert await a.load_state("engine") == b"state-a"
        assert await b.load_state("engine") == b"state-b"
        await a.record_ack("h1:queue_peak:1", "h1", "queue_peak", "", 1.0, "张三", 2.0)
        await b.record_ack("h1:queue_peak:1", "h1", "queue_peak", "", 1.0, "李四", 3.0)
        async with b.db.execute("SELECT acked_by FROM alert_acks") as cur:
            assert await cur.fetchall() == [("张三",)]


async def test_a_claim_is_one_senders_until_its_lease_runs_out(pg_url: str) -> None:
    """What A claimed, B cannot claim while A lives (A renews its lease past lease_s); once A is
    gone, B claims it after the lease and counts the take-over."""
    b = PgOutbox(pg_url, instance="b", lease_s=2.0)
    async with b:
        async with PgOutbox(pg_url, instance="a", lease_s=2.0) as a:
            await a.enqueue(notes(5), now=time.time())
            mine = await a.due(time.time())
            assert [n.key for n in mine] == [f"ev{i}/wecom/sup" for i in range(5)]
            await a.mark_sent(mine[0].seq, time.time())
            assert await b.due(time.time()) == []
            assert await b.next_due() is None  # nothing B may take: no busy loop
            await asyncio.sleep(3.0)  # past lease_s: A's renewal kept the rows
            assert await b.due(time.time()) == []
            assert len(await a.due(time.time())) == 4  # A's own claims come back to A
        # A closed without sending: it stops renewing, as a dead sender does.
        died = time.monotonic()
        while not (taken := await b.due(time.time())):
            await asyncio.sleep(0.1)
            assert time.monotonic() - died < 5.0, "B never took over"
        assert time.monotonic() - died >= 0.5  # not before the lease ran out
        assert sorted(n.key for n in taken) == [f"ev{i}/wecom/sup" for i in range(1, 5)]
        assert b.taken_over == 4


async def test_open_outbox_picks_the_backend(pg_url: str, tmp_path: object) -> None:
    """store.url set: the shared PostgreSQL outbox; empty: the SQLite file at store.path."""
    pg = open_outbox(StoreSettings(url=pg_url, instance="x", lease_s=5))
    assert isinstance(pg, PgOutbox) and pg.lease_s == 5 and pg.instance == "x"
    lite = open_outbox(StoreSettings(path=f"{tmp_path}/o.db"))
    assert not isinstance(lite, PgOutbox)
    async with lite:
        assert await lite.enqueue(notes(2), now=1.0) == 2
        assert await lite.enqueue(notes(2), now=1.0) == 0
