"""Complaints in SQLite and the desk over them: durable steps, topic import, alarms, the CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.config.alerts_reader import read_alerts
from hallwatch.daemon.config.staff import ComplaintSettings
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.staff.complaint_desk import ComplaintDesk
from hallwatch.daemon.staff.complaint_store import ComplaintStore
from hallwatch.daemon.store.events import NewEvent, Store

TZ = "Asia/Shanghai"


def at(text: str) -> float:
    return datetime.fromisoformat(text + "+08:00").timestamp()


ALERTS = read_alerts(
    {
        "wecom": {"robots": {"head": {"key": "robot-head"}, "director": {"key": "robot-dir"}}},
        "roles": {"supervisor": {"wecom": ["head"]}, "director": {"wecom": ["director"]}},
    },
    {},
)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def desk(store: ComplaintStore, clock: Clock, alerts: Alerts | None = None) -> ComplaintDesk:
    return ComplaintDesk(
        store, ComplaintSettings(), WorkCalendar(), tz=TZ, clock=clock, notifier=alerts
    )


def complaint_event(i: int, ts: float, **kw: object) -> NewEvent:
    body = {
        "id": f"desk:{i}",
        "ts": int(ts * 1000),
        "complaint_id": f"T{i}",
        "channel": "phone",
        "severity": "normal",
        "summary": "等候时间太长",
        "received_by": "前台01",
        "phone": "13912345678",
        **kw,
    }
    return NewEvent("h1", f"desk:{i}", "hall/h1/complaint", ts, ts, json.dumps(body).encode())


async def test_steps_survive_a_reopen(tmp_path: Path) -> None:
    """Registration and every transition are committed with their history; a new desk sees them."""
    db = tmp_path / "hw.db"
    clock = Clock(at("2026-11-26T10:00"))
    async with ComplaintStore(db) as store:
        d = desk(store, clock)
        await d.start()
        c, new = await d.register(
            hall="h1",
            complaint_id="C1",
            channel="visit",
            severity="normal",
            summary="态度差",
            received_by="张三",
            phone="13812348000",
        )
        assert new and c.assignee == "张三"  # the receiver is the first responsible person
        again, new2 = await d.register(
            hall="h1",
            complaint_id="C1",
            channel="letter",
            severity="serious",
            summary="x",
            received_by="y",
        )
        assert not new2 and again.channel == "visit"  # the first registration stands
        clock.t += 3600
        await d.act("h1", "C1", "verify", actor="李四", proposal="致歉")
    async with ComplaintStore(db) as store:
        d2 = desk(store, clock)
        await d2.start()
        assert d2.open[("h1", "C1")].state == "verified"
        assert d2.open[("h1", "C1")].phone == "13812348000"  # stored in full
        hist = await store.history("h1", "C1")
        assert [(s.action, s.actor, s.state) for s in hist] == [
            ("register", "张三", "registered"),
            ("notified", "hallwatch", "registered"),
            ("verify", "李四", "verified"),
        ]


async def test_topic_complaints_are_imported_once_across_restarts(tmp_path: Path) -> None:
    """Complaint events in the event log are registered once, even when the desk restarts."""
    db = tmp_path / "hw.db"
    t0 = at("2026-11-26T10:00")
    clock = Clock(t0)
    async with Store(db) as events:
        await events.commit_batch([complaint_event(1, t0), complaint_event(2, t0 + 5)])
        async with ComplaintStore(db) as store:
            d = desk(store, clock)
            await d.start()
            assert sorted(d.open) == [("h1", "T1"), ("h1", "T2")]
        await events.commit_batch([complaint_event(3, t0 + 9)])
        async with ComplaintStore(db) as store:
            d = desk(store, clock)
            await d.start()
            assert sorted(d.open) == [("h1", "T1"), ("h1", "T2"), ("h1", "T3")]
            rows = await store.select()
            assert len(rows) == 3 and rows[0].received_at == t0  # event time, not arrival
            assert len(await store.history("h1", "T1")) == 1


async def test_alarms_go_to_the_outbox_once(tmp_path: Path) -> None:
    """Serious goes to the director at once; overdue escalates; a second check adds nothing."""
    db = tmp_path / "hw.db"
    clock = Clock(at("2026-11-27T16:30"))
    async with ComplaintStore(db) as store, Outbox(db) as outbox:
        alerts = Alerts(ALERTS, outbox, clock=clock)
        d = desk(store, clock, alerts)
        await d.start()
        await d.register(
            hall="h1",
            complaint_id="S1",
            channel="visit",
            severity="serious",
            summary="群体投诉",
            received_by="张三",
            phone="13812348000",
        )
        serious = await outbox.get("complaint/h1/S1/serious/wecom/director")
        assert serious is not None
        assert "138****8000" in serious.payload["content"]
        assert "13812348000" not in serious.payload["content"]
        clock.t = at("2026-12-02T00:00")  # the 2 working days (Mon, Tue) are over
        assert await d.check(clock.t) == 0  # not at midnight: at the next opening
        clock.t = at("2026-12-02T09:00")
        assert await d.check(clock.t) == 1
        assert await outbox.get("complaint/h1/S1/overdue:verify/wecom/director") is not None
        assert await d.check(clock.t + 60) == 0
        depth = (await outbox.stats(clock.t)).depth
        steps = [s.action for s in await store.history("h1", "S1")]
        assert steps == ["register", "reported", "overdue"]
    async with ComplaintStore(db) as store, Outbox(db) as outbox:
        d = desk(store, clock, Alerts(ALERTS, outbox, clock=clock))
        await d.start()
        assert await d.check(clock.t + 120) == 0  # restarted: nothing raised twice
        assert (await outbox.stats(clock.t)).depth == depth


async def test_archive_csv_has_the_full_history_masked(tmp_path: Path) -> None:
    """The export has one row per step of each complaint, phone masked unless PII is allowed."""
    clock = Clock(at("2026-11-26T10:00"))
    async with ComplaintStore(tmp_path / "hw.db") as store:
        d = desk(store, clock)
        await d.register(
            hall="h1",
            complaint_id="A1",
            channel="phone",
            severity="normal",
            summary="材料一次性告知不清",
            received_by="张三",
            phone="13812348000",
        )
        for action, kw in [
            ("verify", {"proposal": "补充告知单"}),
            ("approve", {}),
            ("answer", {"note": "已电话答复"}),
            ("follow_up", {}),
            ("archive", {}),
        ]:
            clock.t += 600
            await d.act("h1", "A1", action, actor="李四", **kw)
        text = await d.export_csv(pii=False, state="archived")
        rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        assert [r["action"] for r in rows] == [
            "register",
            "notified",
            "verify",
            "approve",
            "answer",
            "follow_up",
            "archive",
        ]
        assert {r["phone"] for r in rows} == {"138****8000"}
        assert rows[4]["note"] == "已电话答复" and rows[2]["proposal"] == "补充告知单"
        assert rows[0]["received_at"] == "2026-11-26T10:00:00+08:00"
        full = await d.export_csv(pii=True)
        assert "13812348000" in full
        assert d.open == {}  # archived: no longer held in memory


async def test_topic_complaints_are_capped_per_hall_and_day(tmp_path: Path) -> None:
    """A device flooding the complaint topic registers at most `per_day` complaints a hall and
    business day; the rest are counted, a repeat of a registered one is not, and the next day
    and complaints entered by staff are not held back."""
    db = tmp_path / "hw.db"
    t0 = at("2026-11-26T10:00")
    clock = Clock(t0)
    flood = [complaint_event(i, t0 + i) for i in range(30)]
    flood.append(complaint_event(99, t0 + 50, complaint_id="T0"))  # T0 again, another event
    flood.append(complaint_event(100, at("2026-11-27T10:00")))
    async with Store(db) as events, ComplaintStore(db) as store:
        await events.commit_batch(flood)
        d = ComplaintDesk(
            store, ComplaintSettings(), WorkCalendar(), tz=TZ, clock=clock, per_day=10
        )
        await d.start()
        assert len(await store.select()) == 11 and d.over_limit == 20
        _, new = await d.register(
            hall="h1",
            complaint_id="S1",
            channel="visit",
            severity="normal",
            summary="staff entry",
            received_by="张三",
        )
        assert new


async def test_a_complaint_on_30_september_across_national_day(tmp_path: Path) -> None:
    """A normal complaint received at 15:00 on 30 September, checked every 10 minutes until
    12 October with nobody acting on it: the head is told at once, reminded at 09:00 on
    9 October (its last working day), and the director's office hears it is overdue at 09:00
    on Saturday 10 October (a make-up working day); nothing during the holiday or at night."""
    db = tmp_path / "hw.db"
    clock = Clock(at("2026-09-30T15:00"))
    async with ComplaintStore(db) as store, Outbox(db) as outbox:
        d = desk(store, clock, Alerts(ALERTS, outbox, clock=clock))
        await d.start()
        await d.register(
            hall="h1",
            complaint_id="N1",
            channel="visit",
            severity="normal",
            summary="材料一次性告知不清",
            received_by="张三",
            phone="13812348000",
        )
        while clock.t < at("2026-10-12T00:00"):
            clock.t += 600
            await d.check(clock.t)
        sent = sorted(
            (n.created, n.target, n.payload["content"].split("\n")[0])
            for n in await outbox.due(clock.t, limit=50)
        )
    zone = ZoneInfo(TZ)
    timeline = [(datetime.fromtimestamp(t, zone).strftime("%m-%d %H:%M"), who, head)
                for t, who, head in sent]  # fmt: skip
    for row in timeline:
        print(*row)  # the messages a complaint of 30 September causes, as the note quotes
    assert [(when, who) for when, who, _ in timeline] == [
        ("09-30 15:00", "head"),
        ("10-09 09:00", "head"),
        ("10-10 09:00", "director"),
        ("10-10 09:00", "head"),
    ]
    assert "新投诉" in timeline[0][2] and "到期提醒" in timeline[1][2]
    assert "投诉超期" in timeline[2][2]
