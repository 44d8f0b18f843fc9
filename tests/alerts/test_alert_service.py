"""alerts.service: the rule engine's state is stored with every change, so a crash cannot
change what is notified."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.service import Alerts
from hallwatch.alerts.view import HallView
from hallwatch.daemon.config.alerts_reader import read_alerts

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
SETTINGS = read_alerts(
    {"wecom": {"robots": {"head": {"key": "k"}}}, "roles": {"supervisor": {"wecom": ["head"]}}},
    {},
)


def test_a_dropped_pending_peak_is_not_fired_early_after_a_restart(tmp_path: Path) -> None:
    """20 people for 4 s (pending, not yet the rule's 60 s), then fewer: a daemon killed right
    after, and started again, notifies the next peak when its twin does, under the same key
    (it fired at once, 60 s early and under another alert id, when the dropped pending episode
    was not stored)."""
    views = [(T0, 25), (T0 + 4, 5), (T0 + 70, 25), (T0 + 100, 25), (T0 + 131, 25)]

    async def run(db: Path, crash_after: int | None) -> set[str]:
        sent: set[str] = set()
        outbox_cm = Outbox(db)
        outbox = await outbox_cm.__aenter__()
        alerts = Alerts(SETTINGS, outbox, clock=lambda: T0)
        await alerts.start()
        for i, (now, headcount) in enumerate(views):
            for t in await alerts.evaluate([HallView(hall="h1", now=now, headcount=headcount)]):
                sent.add(f"{t.alert_id}/{t.ordinal}-{t.state}")
            if i == crash_after:  # kill -9: the memory is gone, the file stays
                await outbox_cm.__aexit__(None, None, None)
                outbox_cm = Outbox(db)
                outbox = await outbox_cm.__aenter__()
                alerts = Alerts(SETTINGS, outbox, clock=lambda: T0)
                await alerts.start()
        await outbox_cm.__aexit__(None, None, None)
        return sent

    twin = asyncio.run(run(tmp_path / "twin.db", None))
    crashed = asyncio.run(run(tmp_path / "crashed.db", 1))
    assert twin == {f"h1:queue_peak:{int(T0 + 70)}/1-firing"}
    assert crashed == twin
