"""A report's history read from PostgreSQL: every instance's event log (a pair holding the same
events, shards holding their own halls), each (hall, id) once in arrival order, and the
centre's registers and acknowledgement log from the shared schema."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import zipfile
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hallwatch.alerts.claims import PgOutbox
from hallwatch.alerts.rules import Episode, RuleEngine
from hallwatch.daemon.config.alerts import RuleSettings
from hallwatch.daemon.config.api import Token
from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.reports import history
from hallwatch.daemon.reports.hallday import Stored
from hallwatch.daemon.reports.inputs import Ack, CallbackRecord, ComplaintRecord
from hallwatch.daemon.reports.pgsource import PgSource, merge_logs
from hallwatch.daemon.staff.complaint_store import ComplaintStore
from hallwatch.daemon.staff.complaints import Complaint, Step
from hallwatch.daemon.staff.outage import CallbackStore
from hallwatch.daemon.store.events import NewEvent, Store
from hallwatch.daemon.web import report_api
from hallwatch.daemon.web.server import make_app

from tests.harness.mosquitto import free_port


def ev(hall: str, id_: str, ts: float) -> NewEvent:
    body = json.dumps({"id": id_, "ts": int(ts * 1000)}).encode()
    return NewEvent(hall, id_, f"hall/{hall}/ticket", ts, ts + 0.1, body)


def ids(events: list[Stored]) -> list[tuple[str, float]]:
    return [(e.hall, e.ts) for e in events]


def stored(hall: str, ts: float) -> tuple[str, Stored]:
    return f"{hall}/{ts}", Stored(hall, f"hall/{hall}/ticket", ts, b"")


def test_merge_keeps_the_fuller_logs_order_and_slots_in_the_rest() -> None:
    """Two logs of one hall: the one with more events gives the order (its late arrival
    stays where it arrived); an event only the other holds goes in by event time; every key
    once; halls from different logs (shards) are all kept."""
    a = [stored("h1", t) for t in (1.0, 3.0, 2.0, 5.0)]  # 2.0 arrived late
    b = [stored("h1", t) for t in (1.0, 4.0)] + [stored("h2", 7.0)]
    assert ids(merge_logs([b, a])) == [
        ("h1", 1.0),
        ("h1", 3.0),
        ("h1", 2.0),
        ("h1", 4.0),
        ("h1", 5.0),
        ("h2", 7.0),
    ]
    assert merge_logs([]) == []


async def test_events_of_a_pair_and_a_shard_read_once(pg_url: str) -> None:
    """Instances a and b (a pair) hold h1's events, b one that a missed; c (a shard) holds
    h2's: the report reads h1's once each and h2's, drills left out unless named."""
    async with (
        Store.postgres(pg_url, instance="a") as a,
        Store.postgres(pg_url, instance="b") as b,
        Store.postgres(pg_url, instance="c") as c,
    ):
        await a.commit_batch([ev("h1", "1", 10.0), ev("h1", "3", 30.0)])
        await b.commit_batch([ev("h1", "1", 10.0), ev("h1", "2", 20.0), ev("h1", "3", 30.0)])
        await c.commit_batch([ev("h2", "1", 15.0), ev("drill-h1", "1", 16.0)])
    src = PgSource(pg_url)
    try:
        assert src.instances() == ["hallwatch_a", "hallwatch_b", "hallwatch_c"]
        assert ids(history.read_events(src, 0.0, 100.0)) == [
            ("h1", 10.0),
            ("h1", 20.0),
            ("h1", 30.0),
            ("h2", 15.0),
        ]
        assert ids(history.read_events(src, 0.0, 100.0, "drill-h1")) == [("drill-h1", 16.0)]
        assert ids(history.read_events(src, 15.0, 25.0)) == [("h1", 20.0), ("h2", 15.0)]
    finally:
        src.close()


async def test_registers_and_acks_come_from_the_shared_schema(pg_url: str) -> None:
    """Complaint handling, call-backs and acknowledgements written through two instances are
    read once each; without the tables (no daemon ran) they are None and no acks."""
    store = StoreSettings(url=pg_url, instance="a")
    empty = history.open_source(store)
    try:
        assert history.complaint_rows(empty) is None
        assert history.callback_rows(empty) is None
        assert history.read_acks(empty) == []
    finally:
        empty.close()
    c = Complaint("h1", "C1", "phone", "normal", "久等", "前台", 10.0, "服务科", "张三")
    async with (
        ComplaintStore.open(store) as sa,
        ComplaintStore.open(StoreSettings(url=pg_url, instance="b")) as sb,
        CallbackStore.open(store) as cb,
        PgOutbox(pg_url, instance="a") as oa,
        PgOutbox(pg_url, instance="b") as ob,
    ):
        await sa.add(c, Step(10.0, "register", "前台", "registered"))
        escalated = dataclasses.replace(c, severity="serious")
        step = Step(20.0, "escalate", "科长", "registered")
        assert await sb.update(escalated, step, expect_state="registered")  # through B
        await cb.add(
            hall="h1", name="张三", phone="13912345678", at=5.0, by="前台", systems=["core"]
        )
        await oa.record_ack("q-1", "h1", "queue_peak", "", 1000.0, "李四", 1300.0)
        engine = RuleEngine(RuleSettings())
        e = Episode("h2", "queue_peak", "", "firing", 2000.0, acked_by="王五", acked_at=2100.0)
        engine.episodes[("h2", "queue_peak", "")] = e
        await ob.save_state("rules", engine.snapshot(), 2100.0)
        await oa.save_state("rules", engine.snapshot(), 2100.0)  # the pair: the same episode
    rep = history.open_source(store)
    try:
        assert history.complaint_rows(rep) == [
            ComplaintRecord("h1", "C1", None, True, None, "张三")
        ]
        assert history.callback_rows(rep) == [CallbackRecord("h1", 5.0, None, ("core",))]
        assert sorted(history.read_acks(rep), key=lambda a: a.since) == [
            Ack("h1", "queue_peak", "", 1000.0, 1300.0, "李四"),
            Ack("h2", "queue_peak", "", 2000.0, 2100.0, "王五"),
        ]
    finally:
        rep.close()


def test_unreachable_database_is_an_os_error() -> None:
    """A report on a PostgreSQL nobody listens on fails as OSError naming store.url (the CLI
    and the API turn it into their error), not with a traceback."""
    with pytest.raises(OSError, match=r"store\.url"):
        PgSource(f"postgresql://nobody@127.0.0.1:{free_port()}/x", connect_timeout_s=2)


def ticket(i: int, ts: float) -> NewEvent:
    body = {"id": f"tm:{i}", "ts": int(ts * 1000), "type": "issued"}
    body |= {"ticket": f"A{i:03d}", "service": "提取"}
    raw = json.dumps(body, ensure_ascii=False).encode()
    return NewEvent("h1", body["id"], "hall/h1/ticket", ts, ts + 0.1, raw)  # type: ignore[arg-type]


async def test_http_report_reads_every_instance(pg_url: str) -> None:
    """GET /api/report on a daemon with store.url reports from PostgreSQL: tickets two
    instances both stored, plus one only the second holds, are counted once each; with the
    database gone the API answers 503, not 500."""
    t0 = datetime(2026, 3, 4, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
    async with Store.postgres(pg_url, instance="a") as a, Store.postgres(pg_url, instance="b") as b:
        await a.commit_batch([ticket(i, t0 + 60 * i) for i in range(3)])
        await b.commit_batch([ticket(i, t0 + 60 * i) for i in range(4)])
    token = Token("centre", "s3cret-0123456789", frozenset({"reports:read"}))
    auth = {"Authorization": "Bearer s3cret-0123456789"}
    url = "/api/report?from=2026-03-04&to=2026-03-04&format=zip"
    for store, want in ((StoreSettings(url=pg_url), 200), (StoreSettings(url=dead()), 503)):
        app = make_app([token])
        report_api.add_routes(app, store, Settings())
        async with TestClient(TestServer(app)) as client:
            resp = await client.get(url, headers=auth)
            assert resp.status == want
            if want == 200:
                with zipfile.ZipFile(io.BytesIO(await resp.read())) as z:
                    text = z.read("01-summary.csv").decode("utf-8-sig")
                [row] = list(csv.DictReader(io.StringIO(text)))
                assert row["取号"] == "4"


def dead() -> str:
    return f"postgresql://nobody@127.0.0.1:{free_port()}/x?connect_timeout=2"
