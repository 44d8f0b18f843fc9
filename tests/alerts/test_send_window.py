"""The at-least-once window of the shared outbox, measured: from the moment a WeCom-style
receiver shows a notification to the moment the sender's `sent` is committed in PostgreSQL. A
sender killed inside it has its notification sent again by the survivor (WeCom takes no
idempotency key); each notification is recorded right after its own answer, before the next
one of its lane is sent, so at most one per lane is ever in that window (#18)."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
from aiohttp import web
from hallwatch.alerts.channels import SENT, Result
from hallwatch.alerts.channels.wecom import WecomChannel
from hallwatch.alerts.claims import PgOutbox
from hallwatch.alerts.dispatcher import Dispatcher
from hallwatch.alerts.outbox import NewNotification, Notification, Outbox
from hallwatch.daemon.config.alerts import OutboxSettings, Robot

from tests.harness.alert_fakes import FakeWecom

N = 150


@contextmanager
def receiver_thread(app: web.Application) -> Iterator[str]:
    """`app` on a loopback port, served by a thread and event loop of its own (a receiver
    elsewhere: its answers do not wait on the sender's loop); yields its base URL."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner = web.AppRunner(app)
    port: list[int] = []

    async def up() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(runner.addresses[0][1])
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(up(), loop)
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{port[0]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


class Timed(PgOutbox):
    """The shared outbox, noting when each `sent` is committed (the end of the window)."""

    committed: dict[int, float]

    async def mark_sent(self, seq: int, now: float) -> None:
        await super().mark_sent(seq, now)
        self.committed[seq] = time.time()


async def test_each_notification_is_recorded_within_milliseconds_of_being_shown(
    pg_url: str,
) -> None:
    """150 notifications to one robot through the PostgreSQL outbox: each one's `sent` is
    committed before the next one reaches the receiver, and the window from shown to
    committed is a few milliseconds (printed: median, 90th percentile, max)."""
    wecom = FakeWecom(limit=100_000)
    with receiver_thread(wecom.app()) as url:
        async with Timed(pg_url, instance="w") as ob, aiohttp.ClientSession() as session:
            ob.committed = {}
            robots = {"r": Robot(url=f"{url}/cgi-bin/webhook/send", key="robot-r")}
            channel = WecomChannel(session, robots, clock=time.time)
            notes = [
                NewNotification(f"n{i}", "wecom", "r", {"msgtype": "text", "content": f"n{i}"})
                for i in range(N)
            ]
            await ob.enqueue(notes, now=time.time())
            d = Dispatcher(ob, {"wecom": channel}, OutboxSettings(), clock=time.time, batch=N)
            while len(ob.committed) < N:
                assert await d.step() > 0
            assert await ob.due(time.time() + 1) == [], "every notification recorded sent"
            async with ob.db.execute("SELECT key, seq FROM alert_outbox") as cur:
                seq_of = {str(k): int(s) for k, s in await cur.fetchall()}
    shown = {str(h.body["text"]["content"]): h.at for h in wecom.accepted}
    assert len(shown) == N == len(wecom.accepted)
    order = sorted(shown, key=lambda k: shown[k])
    for key, nxt in itertools.pairwise(order):
        assert ob.committed[seq_of[key]] < shown[nxt], f"{key} recorded after {nxt} was shown"
    window = sorted((ob.committed[seq_of[k]] - shown[k]) * 1000 for k in order)
    span = (ob.committed[seq_of[order[-1]]] - shown[order[0]]) * 1000
    print(
        f"\nshown -> sent committed, {N} notifications, one lane: median"
        f" {statistics.median(window):.2f} ms, p90 {window[int(0.9 * N)]:.2f} ms,"
        f" max {window[-1]:.2f} ms; {100 * sum(window) / span:.0f} % of the lane's"
        f" {span:.0f} ms inside a window"
    )


async def test_the_survivor_knows_which_notification_its_dead_peer_was_sending(
    pg_url: str,
) -> None:
    """a claims three notifications, fails one (retry), begins sending another and dies; after
    the lease b takes all three over and counts only the one a was sending as maybe shown."""
    now = time.time()
    async with PgOutbox(pg_url, instance="a", lease_s=0.3) as a:
        notes = [NewNotification(f"k{i}", "wecom", "r", {"content": str(i)}) for i in range(3)]
        await a.enqueue(notes, now=now)
        mine = await a.due(now)
        assert [n.key for n in mine] == ["k0", "k1", "k2"]
        await a.sending(mine[0].seq)
        await a.mark_retry(mine[0].seq, now, "timeout")  # answered: not in flight any more
        await a.sending(mine[1].seq)  # and a dies here: its leases are no longer renewed
    await asyncio.sleep(0.5)
    async with PgOutbox(pg_url, instance="b", lease_s=0.3) as b:
        taken = await b.due(time.time())
        assert [n.key for n in taken] == ["k0", "k1", "k2"]
        assert (b.taken_over, b.resent_unknown) == (3, 1)
        await b.mark_sent(taken[1].seq, time.time())
        sent = await b.get("k1")
        assert sent is not None and sent.state == "sent"


class _Receiver:
    """A channel at the edge (a receiver that shows what it gets, 10 ms to answer); the first
    send raises, as a channel bug would."""

    name = "wecom"

    def __init__(self, d: list[Dispatcher]) -> None:
        self._d = d
        self.during: list[int] = []  # `answered` while each is being sent

    def ready_at(self, note: Notification, now: float) -> float:
        return now

    async def send(self, note: Notification) -> Result:
        self.during.append(self._d[0].answered)
        await asyncio.sleep(0.01)
        if len(self.during) == 1:
            raise RuntimeError("a channel bug")
        return Result(SENT, "ok")


class _Noting(Outbox):
    """The outbox, noting what the dispatcher says of itself as each result is recorded."""

    at_record: list[int]
    d: Dispatcher

    async def mark_sent(self, seq: int, now: float) -> None:
        self.at_record.append(self.d.answered)
        await super().mark_sent(seq, now)

    async def mark_retry(self, seq: int, due: float, error: str) -> None:
        self.at_record.append(self.d.answered)
        await super().mark_retry(seq, due, error)


async def test_a_notification_is_answered_until_its_result_is_recorded(tmp_path: Path) -> None:
    """`Dispatcher.answered` (what the tick gives way to, daemon/pipeline/turns.py, so the
    record follows the answer at once) is 1 from a notification's answer until its result is
    recorded, also after a channel that raised; 0 while it is being sent (a receiver slow to
    answer must not slow the tick) and after each is recorded."""
    async with _Noting(tmp_path / "o.db") as ob:
        notes = [NewNotification(f"k{i}", "wecom", "r", {"content": str(i)}) for i in range(3)]
        await ob.enqueue(notes, now=time.time())
        holder: list[Dispatcher] = []
        channel = _Receiver(holder)
        d = Dispatcher(ob, {"wecom": channel}, OutboxSettings(), clock=time.time)
        holder.append(d)
        ob.d, ob.at_record = d, []
        await d.step()
        assert channel.during == [0, 0, 0] and ob.at_record == [1, 1, 1] and d.answered == 0
        async with ob.db.execute("SELECT key, state FROM alert_outbox ORDER BY key") as cur:
            rows = [tuple(r) for r in await cur.fetchall()]
    assert rows[1:] == [("k1", "sent"), ("k2", "sent")] and rows[0][1] != "sent"
