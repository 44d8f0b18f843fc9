"""Drill days stay out of the centre's report unless the drill hall is asked for by name."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from hallwatch.daemon.reports.history import read_events
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
