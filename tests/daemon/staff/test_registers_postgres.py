"""The staff registers and the acknowledgement log in PostgreSQL (a private server): shared by
the instances of a centre, with the SQLite version's guarantees (stored before the answer, a
repeat changes nothing), and the import cursor over each instance's own event log its own."""

from __future__ import annotations

import psycopg
from hallwatch.alerts import acklink
from hallwatch.alerts.claims import PgOutbox
from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.config.staff import ComplaintSettings, OutageSettings
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.staff.complaint_desk import ComplaintDesk
from hallwatch.daemon.staff.complaint_store import ComplaintStore
from hallwatch.daemon.staff.outage import Callbacks, CallbackStore
from hallwatch.daemon.staff.paper import Paper, PaperIntake, PaperStore
from hallwatch.daemon.store.events import open_store

from tests.daemon.staff.test_complaint_store import TZ, Clock, at, complaint_event
from tests.factories import system_ev


def pg(url: str, instance: str) -> StoreSettings:
    return StoreSettings(url=url, instance=instance)


def desk(store: ComplaintStore, clock: Clock) -> ComplaintDesk:
    return ComplaintDesk(store, ComplaintSettings(), WorkCalendar(), tz=TZ, clock=clock)


def where(url: str, table: str) -> list[str]:
    """The schemas holding `table`."""
    with psycopg.connect(url) as con:
        rows = con.execute(
            "SELECT schemaname FROM pg_tables WHERE tablename = %s ORDER BY 1", (table,)
        ).fetchall()
    return [r[0] for r in rows]


async def test_complaint_registered_through_a_is_answered_through_b(pg_url: str) -> None:
    """A complaint registered through instance A is seen, acted on and answered through B; the
    history is one, in order; a second registration of the same id through B changes nothing."""
    clock = Clock(at("2026-03-02T10:00:00"))
    async with (
        ComplaintStore.open(pg(pg_url, "a")) as sa,
        ComplaintStore.open(pg(pg_url, "b")) as sb,
    ):
        a, b = desk(sa, clock), desk(sb, clock)
        await a.start()
        await b.start()
        fields = {
            "hall": "h1",
            "complaint_id": "C1",
            "channel": "visit",
            "severity": "normal",
            "summary": "窗口态度",
            "received_by": "前台01",
            "phone": "13912345678",
        }
        c, new = await a.register(**fields)
        assert new
        again, new = await b.register(**fields)
        assert not new and (again.complaint_id, again.received_at) == (
            c.complaint_id,
            c.received_at,
        )
        for action, actor in (("verify", "科员"), ("approve", "科长"), ("answer", "科员")):
            clock.t += 600
            await b.act("h1", "C1", action, actor=actor, proposal="致歉")
        got = await sa.get("h1", "C1")
        assert got is not None and got.state == "answered" and got.answered_at == clock.t
        history = [s.action for s in await sa.history("h1", "C1")]
        staff = [a for a in history if a in ("register", "verify", "approve", "answer")]
        assert staff == ["register", "verify", "approve", "answer"]
        assert history.count("notified") == 1  # the alarm recorded once, by A
        # A's desk learns of B's steps on its next tick; it does not keep a stale copy.
        await a.tick(clock.t)
        assert a.open[("h1", "C1")].state == "answered"
    assert where(pg_url, "complaints") == ["hallwatch"]
    assert where(pg_url, "complaint_meta") == ["hallwatch_a", "hallwatch_b"]


async def test_both_instances_import_a_topic_complaint_once(pg_url: str) -> None:
    """The pair both store a `complaint` event and both desks import it: one complaint, one
    registration step; each desk's cursor is over its own log."""
    ts = at("2026-03-02T10:00:00")
    event = complaint_event(1, ts)
    for inst in ("a", "b"):
        async with open_store(pg(pg_url, inst)) as events:
            await events.commit_batch([event, complaint_event(2, ts)] if inst == "b" else [event])
    async with (
        ComplaintStore.open(pg(pg_url, "a")) as sa,
        ComplaintStore.open(pg(pg_url, "b")) as sb,
    ):
        assert await desk(sa, Clock(ts)).import_events() == 1
        assert await desk(sb, Clock(ts)).import_events() == 1  # T2, which only B stored
        assert await desk(sa, Clock(ts)).import_events() == 0
        assert [c.complaint_id for c in await sa.select()] == ["T1", "T2"]
        assert [s.action for s in await sb.history("h1", "T1")] == ["register"]
        assert (await sa.cursor("events"), await sb.cursor("events")) == (1, 2)


async def test_callbacks_and_paper_are_one_register(pg_url: str) -> None:
    """Call-backs and paper submissions taken through either instance get ids unique in the
    centre (the SMS and notice keys are built from them), are seen through both, and are
    marked done once; the counts are the register's."""
    async with (
        CallbackStore.open(pg(pg_url, "a")) as ca,
        CallbackStore.open(pg(pg_url, "b")) as cb,
        PaperStore.open(pg(pg_url, "a")) as pa,
        PaperStore.open(pg(pg_url, "b")) as pb,
    ):
        one = await ca.add(
            hall="h1", name="张三", phone="13912345678", at=1.0, by="前台", systems=["core"]
        )
        two = await cb.add(
            hall="h1", name="李四", phone="13812345678", at=2.0, by="前台", systems=["core"]
        )
        assert (one.id, two.id) == (1, 2)
        assert [c.id for c in await cb.select(pending=True)] == [1, 2]
        await cb.mark_notified([1], 5.0)
        await ca.mark_notified([1], 6.0)  # the peer saw the system back too: no change
        assert (await ca.get(1)).notified_at == 5.0  # type: ignore[union-attr]
        assert await ca.counts() == {"h1": (1, 1)}
        await ca.set_expected("h1", 100.0, "信息中心", 3.0)
        assert await cb.expected() == {"h1": 100.0}
        p = Paper(0, "h1", "提取", "王五", None, "身份证", 1.0, "前台", ("core",))
        first, second = await pa.add(p), await pb.add(p)
        assert (first.id, second.id) == (1, 2)
        assert await pb.mark_entered(1, by="科员", reference="R1", at=9.0)
        assert not await pa.mark_entered(1, by="科员", reference="R2", at=10.0)
        assert await pa.counts() == {"h1": (1, 1)}
    assert where(pg_url, "callbacks") == where(pg_url, "paper_intake") == ["hallwatch"]


async def test_acknowledgement_log_is_shared(pg_url: str) -> None:
    """An acknowledgement and the phone page's details taken through A are in the shared log B
    reads; a second one of the same episode changes nothing."""
    detail = acklink.AckDetail("q-1", "h1", "supervisor", "p1", "张三", 2, "已开窗", 5.0)
    async with PgOutbox(pg_url, instance="a") as a, PgOutbox(pg_url, instance="b") as b:
        await a.record_ack("q-1", "h1", "queue_peak", "", 1.0, "张三", 5.0)
        await b.record_ack("q-1", "h1", "queue_peak", "", 1.0, "李四", 6.0)
        await acklink.record(a, detail)
        await acklink.record(b, acklink.AckDetail("q-1", "h1", "x", "p2", "李四", 0, "", 6.0))
        assert await b.peer_acks(["q-1"]) == {"q-1": ("张三", 5.0)}
        async with b.db.execute("SELECT person, windows, note FROM alert_ack_details") as cur:
            assert await cur.fetchall() == [("张三", 2, "已开窗")]
    assert where(pg_url, "alert_ack_details") == ["hallwatch"]


async def test_a_shard_leaves_the_other_shards_halls_alone(pg_url: str) -> None:
    """Shards share the registers: a daemon holding only h1 neither announces the paper of h9
    (another shard's hall, whose outage it cannot see) nor clears h9's expected recovery;
    the shard holding h9 does both once its system is back."""
    mine, other = HallsState(), HallsState()
    mine.apply(system_ev("core", "up", 100.0, hall="h1"))
    other.apply(system_ev("core", "down", 100.0, hall="h9"))
    clock = Clock(200.0)
    async with (
        PaperStore.open(pg(pg_url, "a")) as pa,
        PaperStore.open(pg(pg_url, "b")) as pb,
        CallbackStore.open(pg(pg_url, "a")) as ca,
        CallbackStore.open(pg(pg_url, "b")) as cb,
        PgOutbox(pg_url, instance="a") as oa,
        PgOutbox(pg_url, instance="b") as ob,
    ):
        shard_a = PaperIntake(pa, state=lambda: mine, clock=clock)
        shard_b = PaperIntake(pb, state=lambda: other, clock=clock)
        calls_a = Callbacks(
            ca, oa, OutageSettings(), state=lambda: mine, callback_after=lambda h: 0, clock=clock
        )
        calls_b = Callbacks(
            cb, ob, OutageSettings(), state=lambda: other, callback_after=lambda h: 0, clock=clock
        )
        await pb.add(Paper(0, "h9", "提取", "王五", None, "身份证", 150.0, "前台", ("core",)))
        await calls_b.set_expected("h9", 5000.0, "信息中心")
        assert await shard_a.tick(clock.t) == 0
        await calls_a.tick(clock.t)
        assert await ca.expected() == {"h9": 5000.0}
        other.apply(system_ev("core", "up", 300.0, hall="h9"))
        clock.t = 400.0
        assert await shard_b.tick(clock.t) == 1
        await calls_b.tick(clock.t)
        assert await ca.expected() == {}
