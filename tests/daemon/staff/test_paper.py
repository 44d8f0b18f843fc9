"""The paper-intake register (plan 4.3, 先收件后补录) on a real SQLite file and outbox."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.staff.outage import OutageError
from hallwatch.daemon.staff.paper import NOTICE_LINES, Paper, PaperIntake, PaperStore

from tests.daemon.staff.test_complaint_store import ALERTS, Clock
from tests.factories import system_ev

TZ = "Asia/Shanghai"


def at(text: str) -> float:
    return datetime.fromisoformat(text + "+08:00").timestamp()


def intake(store: PaperStore, state: HallsState, clock: Clock, alerts: Alerts) -> PaperIntake:
    return PaperIntake(store, state=lambda: state, clock=clock, notifier=alerts, tz=TZ)


async def take(p: PaperIntake, name: str = "王先生", **kw: object) -> Paper:
    fields: dict[str, object] = {
        "hall": "h1",
        "service": "提取",
        "name": name,
        "phone": "13812348000",
        "documents": "身份证复印件、提取申请表",
        "by": "前台01",
    }
    fields.update(kw)
    return await p.register(**fields)  # type: ignore[arg-type]


async def test_paper_is_taken_only_in_an_outage_and_announced_once_on_recovery(
    tmp_path: Path,
) -> None:
    """Refused while every system is up; taken while one is down; once it is back the head is
    told once (count and list, no names or phones in the group message), across a restart."""
    db = tmp_path / "hw.db"
    clock = Clock(at("2026-12-01T10:00"))
    state = HallsState()
    state.apply(system_ev("core", "up", clock.t - 60))
    async with PaperStore(db) as store, Outbox(db) as outbox:
        p = intake(store, state, clock, Alerts(ALERTS, outbox, clock=clock))
        await p.start()
        with pytest.raises(OutageError) as err:
            await take(p)
        assert err.value.code == "no_outage"
        state.apply(system_ev("core", "down", clock.t))
        clock.t += 300
        first = await take(p)
        await take(p, name="李女士", phone=None)
        assert first.systems == ("core",) and first.received_at == clock.t
        assert p.tally == {"h1": (2, 0)}
        assert await p.tick(clock.t) == 0  # still down: nobody to enter anything
        state.apply(system_ev("core", "up", clock.t + 600))
        clock.t += 660
        assert await p.tick(clock.t) == 2
        assert await p.tick(clock.t + 60) == 0
        note = await outbox.get(f"paper/h1/{first.id}/wecom/head")
        assert note is not None
        text = note.payload["content"]
        assert "纸质材料 2 份待补录" in text and "提取" in text
        assert "王先生" not in text and "8000" not in text
        depth = (await outbox.stats(clock.t)).depth
    async with PaperStore(db) as store, Outbox(db) as outbox:
        p = intake(store, state, clock, Alerts(ALERTS, outbox, clock=clock))
        await p.start()
        assert p.tally == {"h1": (2, 0)}
        assert await p.tick(clock.t + 120) == 0  # restarted: nothing announced twice
        assert (await outbox.stats(clock.t)).depth == depth


async def test_a_crash_between_the_notice_and_its_record_sends_nothing_twice(
    tmp_path: Path,
) -> None:
    """If the daemon dies after storing the notice but before marking the submissions announced,
    the next tick stores the same key again: the outbox keeps one notice."""
    db = tmp_path / "hw.db"
    clock = Clock(at("2026-12-01T10:00"))
    state = HallsState()
    state.apply(system_ev("core", "down", clock.t - 60))
    async with PaperStore(db) as store, Outbox(db) as outbox:
        p = intake(store, state, clock, Alerts(ALERTS, outbox, clock=clock))
        for i in range(NOTICE_LINES + 3):
            await take(p, name=f"客户{i}")
        state.apply(system_ev("core", "up", clock.t + 60))
        clock.t += 120
        assert await p.tick(clock.t) == NOTICE_LINES + 3
        depth = (await outbox.stats(clock.t)).depth
        async with store.transaction() as tx:  # as if the record had never been written
            await tx.execute("UPDATE paper_intake SET announced_at = NULL")
        assert await p.tick(clock.t + 60) == NOTICE_LINES + 3
        assert (await outbox.stats(clock.t)).depth == depth
        (note,) = [n for n in await outbox.due(clock.t + 60) if n.key.startswith("paper/")]
        assert "另有 3 份" in note.payload["content"]


async def test_entered_once_with_the_reference(tmp_path: Path) -> None:
    """A submission is closed once, by a named person with the system's number; a second entry,
    an unknown id or a missing reference are refused, and the tally follows."""
    clock = Clock(at("2026-12-01T10:00"))
    state = HallsState()
    state.apply(system_ev("core", "down", clock.t - 60))
    async with PaperStore(tmp_path / "hw.db") as store, Outbox(tmp_path / "hw.db") as outbox:
        p = intake(store, state, clock, Alerts(ALERTS, outbox, clock=clock))
        sub = await take(p)
        with pytest.raises(OutageError) as err:
            await p.entered(sub.id, by="李四", reference="")
        assert err.value.code == "missing_field"
        done = await p.entered(sub.id, by="李四", reference="TQ2026-0001")
        assert (done.entered_by, done.reference) == ("李四", "TQ2026-0001")
        assert p.public(done, pii=False)["phone"] == "138****8000"
        assert p.public(done, pii=False)["state"] == "entered"
        for pid, code in ((sub.id, "already_entered"), (999, "not_found")):
            with pytest.raises(OutageError) as err:
                await p.entered(pid, by="李四", reference="x")
            assert err.value.code == code
        assert p.tally == {"h1": (0, 1)}
        with pytest.raises(OutageError) as err:
            await take(p, documents="x" * 501)
        assert err.value.code == "missing_field"
