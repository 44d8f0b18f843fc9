"""The desk keeps each complaint's alarm instants and skips it until the next one: the alarms
it raises, checked every few minutes over a week, are exactly those the pure rule says, when."""

from __future__ import annotations

from pathlib import Path

import pytest
from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.config.sections import StoreSettings
from hallwatch.daemon.staff import complaints as cp
from hallwatch.daemon.staff.complaint_store import ComplaintStore

from tests.daemon.staff.test_complaint_store import ALERTS, TZ, Clock, at, desk

STEP_S = 300.0


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
async def test_kept_marks_raise_each_alarm_at_the_first_check_it_is_due(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    """Two complaints checked every 5 minutes from Thursday to the next Wednesday, one verified on
    Monday (a new stage, new marks): every check raises exactly what `complaints.alarms` says of
    the complaint as it stands, so a kept mark never hides an alarm nor raises one early; the
    counts a scrape reads from the kept deadlines are the pure ones; a shared (PostgreSQL)
    register read back every tick keeps unchanged complaints (and their marks) as they were."""
    db = tmp_path / "hw.db"
    clock = Clock(at("2026-11-26T16:40"))
    raised_at: dict[str, float] = {}
    if engine == "sqlite":
        register = ComplaintStore(db)
    else:
        url = request.getfixturevalue("pg_url")
        register = ComplaintStore.open(StoreSettings(url=url, instance="a"))
    async with register as store, Outbox(db) as outbox:
        d = desk(store, clock, Alerts(ALERTS, outbox, clock=clock))
        await d.start()
        for cid in ("N1", "N2"):
            await d.register(
                hall="h1",
                complaint_id=cid,
                channel="visit",
                severity="normal",
                summary="等候时间太长",
                received_by="张三",
                phone="13812348000",
            )
        end = at("2026-12-03T18:00")
        while clock.t < end:
            clock.t += STEP_S
            if clock.t == at("2026-11-30T10:00"):
                await d.act("h1", "N2", "verify", actor="李四", proposal="增开窗口")
            want = []
            for key in sorted(d.open):
                c = d.open[key]
                want += [a.flag for a in cp.alarms(c, clock.t, d.settings, d.calendar, TZ)]
            assert await d.check(clock.t) == len(want), (clock.t, want)
            before = dict(d.open)
            await d.reload()  # every staff tick: unchanged ones keep their identity (marks)
            assert all(d.open[k] is c for k, c in before.items())
            pure = cp.counts(d.open.values(), clock.t, d.settings, d.calendar, TZ)
            assert d.counts(clock.t) == pure  # a scrape's counts read the kept deadlines
            for flag in want:
                raised_at.setdefault(flag, clock.t)
    # Two working days from Thursday (Friday, Monday): reminded at Monday's opening, overdue
    # at Tuesday's; the verified one's answer is due by the same count from its receipt.
    assert raised_at == {
        "remind:verify": at("2026-11-30T09:00"),
        "overdue:verify": at("2026-12-01T09:00"),
        "overdue:answer": at("2026-12-01T09:00"),
    }
