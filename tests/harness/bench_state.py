"""A day of many halls written straight into a daemon's event store, for `bench users` idle.

Feeding 500 halls a day through MQTT is out of reach of a bench run (the daemon slows to tens of
events a second once 100 halls have queues), so the day's events up to its last `live` go into
the store with the daemon's own parser and `Store.commit_batch`, as ingest would have written
them; the daemon replays them at start-up and the rest arrive live over MQTT.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

from hallwatch.daemon.store.events import NewEvent, Store
from hallwatch.sensors.events import Rejection
from hallwatch.sensors.parse import parse


async def _write(db: Path, messages: Iterable[tuple[str, bytes]], batch: int) -> int:
    n = 0
    async with Store(db, synchronous="NORMAL") as store:
        pending: list[NewEvent] = []
        for topic, raw in messages:
            event = parse(topic, raw)
            if isinstance(event, Rejection):
                raise ValueError(f"simulated event rejected: {event}")
            pending.append(NewEvent(event.hall, event.id, topic, event.ts, event.ts, raw))
            if len(pending) >= batch:
                await store.commit_batch(pending)
                n += len(pending)
                pending = []
        if pending:
            await store.commit_batch(pending)
            n += len(pending)
    return n


def write_history(db: Path, messages: Iterable[tuple[str, bytes]], batch: int = 2000) -> int:
    """Store `messages` (topic, payload) in `db` as accepted events; returns how many."""
    db.parent.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_write(db, messages, batch))
