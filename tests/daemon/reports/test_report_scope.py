"""What the centre's report counts as what: drill halls stay out unless named; a relapse is one
episode, not two."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

from hallwatch.alerts.view import Figures, HallView, Transition
from hallwatch.daemon.config.settings import Settings
from hallwatch.daemon.reports.hallday import _DayReplay
from hallwatch.daemon.reports.history import read_events
from hallwatch.daemon.reports.inputs import ReportSettings
from hallwatch.daemon.store.events import NewEvent, Store

T0 = 1_796_000_000.0


async def test_drill_halls_are_left_out_of_all_halls(tmp_path: Path) -> None:
    """read_events for all halls returns h1's events and none of drill-h1's; naming drill-h1
    returns its own."""
    db = tmp_path / "hw.db"
    batch = []
    for i, hall in enumerate(["h1", "drill-h1", "h1", "drill-h1", "drill"]):
        body = {"id": f"e{i}", "ts": int((T0 + i) * 1000), "type": "issued", "ticket": f"A{i}"}
        topic = f"hall/{hall}/ticket"
        batch.append(NewEvent(hall, f"e{i}", topic, T0 + i, T0 + i, json.dumps(body).encode()))
    async with Store(db) as store:
        await store.commit_batch(batch)
    conn = sqlite3.connect(db)
    try:
        centre = read_events(conn, T0 - 1, T0 + 10)
        drill = read_events(conn, T0 - 1, T0 + 10, "drill-h1")
    finally:
        conn.close()
    assert [e.hall for e in centre] == ["h1", "h1"]
    assert [e.hall for e in drill] == ["drill-h1", "drill-h1"]


def test_a_relapse_continues_the_reported_peak_episode() -> None:
    """firing, resolved, relapsed (same id), resolved: the report has one episode, ending at the
    last clear, with one relapse (it ended at the first clear before)."""
    replay = _DayReplay("h1", date(2026, 11, 26), ReportSettings.from_settings(Settings()))
    view = HallView(hall="h1", now=T0, headcount=25)

    def t(state: str, at: float) -> Transition:
        return Transition(
            at, "h1", "queue_peak", "", "h1:queue_peak:1", state, 1, ("supervisor",), "",
            T0, 1, Figures(), reason="cleared" if state == "resolved" else "",
        )  # fmt: skip

    for state, at in (("firing", 60), ("resolved", 400), ("relapsed", 1300), ("resolved", 2000)):
        replay.on_peak(t(state, T0 + at), view)
    (episode,) = replay.out.peaks
    assert episode.resolved_at == T0 + 2000 and episode.relapses == 1
