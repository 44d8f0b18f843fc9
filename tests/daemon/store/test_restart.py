"""Start-up after an unclean stop: no stored event can keep `hallwatch run` from starting.

Each case writes what a killed daemon would have left in its database (raw topic and payload,
as ingest stores them, and no snapshot: snapshots are taken every 20,000 events or at a clean
stop), then starts the real daemon as a process on it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hallwatch.daemon.store.events import NewEvent, Store

from tests.conftest import DaemonProcess, wait_until
from tests.harness.mosquitto import Mosquitto

ZONE = ZoneInfo("Asia/Shanghai")


def _issued(hall: str, eid: str, ticket: str, ts: float, service: str = "提取") -> NewEvent:
    body = {"id": eid, "ts": int(ts * 1000), "type": "issued", "ticket": ticket}
    body["service"] = service
    payload = json.dumps(body, ensure_ascii=False).encode()
    return NewEvent(hall, eid, f"hall/{hall}/ticket", ts, ts, payload)


def _store(db: Path, events: list[NewEvent]) -> None:
    async def go() -> None:
        async with Store(db) as store:
            for i in range(0, len(events), 500):
                await store.commit_batch(events[i : i + 500])

    asyncio.run(go())


def _today_start(now: float) -> float:
    local = datetime.fromtimestamp(now, ZONE)
    return datetime.combine(local.date(), datetime.min.time(), ZONE).timestamp()


def _midnight(now: float) -> tuple[list[NewEvent], int]:
    """Yesterday's A001-A005, then today's A001-A002 (ticket numbers restart every day)."""
    yday = _today_start(now) - 7 * 3600  # 17:00 yesterday
    today = max(now - 60, _today_start(now) + 1)
    evs = [_issued("h1", f"tm:y{i}", f"A00{i}", yday + i) for i in range(1, 6)]
    evs += [_issued("h1", f"tm:t{i}", f"A00{i}", today + i / 10) for i in range(1, 3)]
    return evs, 2


def _stale_stamp(now: float) -> tuple[list[NewEvent], int]:
    """Today's tickets, and one from a device whose clock says 1970."""
    today = max(now - 60, _today_start(now) + 1)
    evs = [_issued("h1", f"tm:t{i}", f"A00{i}", today + i / 10) for i in range(1, 4)]
    evs.append(_issued("h1", "tm:1970", "A999", 1.0))
    return evs, 3


def _over_cap(now: float) -> tuple[list[NewEvent], int]:
    """5,200 tickets in one hall and day: 200 past the default cap of 5,000."""
    today = max(now - 600, _today_start(now) + 1)
    evs = [_issued("h1", f"tm:g{i}", f"G{i:04d}", today + i / 100) for i in range(5200)]
    return evs, 5000


@pytest.mark.parametrize(
    "history", [_midnight, _stale_stamp, _over_cap], ids=["midnight", "stale", "over_cap"]
)
def test_daemon_starts_on_what_a_kill9_left(
    broker: Mosquitto,
    daemon_factory: Callable[..., DaemonProcess],
    history: Callable[[float], tuple[list[NewEvent], int]],
) -> None:
    """`hallwatch run` starts, serves today's figures and stops cleanly on a database left by
    kill -9 after a midnight, a stale-stamped event, or more tickets than the daily cap."""
    d = daemon_factory(broker.url)
    events, issued_today = history(time.time())
    _store(d.db, events)
    d.start()
    wait_until(
        lambda: d.sample("hallwatch_tickets_today", hall="h1", event="issued") == issued_today,
        what=f"{issued_today} tickets issued today",
    )
    assert d.sample("hallwatch_restore_replayed_events") == len(events)
    assert d.stop() == 0
    assert "Traceback" not in d.log.read_text()
