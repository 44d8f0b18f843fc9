"""The daemon: restore state, then ingest and serve HTTP under one TaskGroup until stopped."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, disable_created_metrics

from daemon import state as state_mod
from daemon.config import Settings
from daemon.http import HttpServer
from daemon.ingest import Ingest
from daemon.metrics import IngestMetrics, StateCollector
from daemon.state import HallsState, Limits
from daemon.store import Store
from sensors.events import Rejection
from sensors.parse import parse

log = logging.getLogger("hallwatch")


async def restore(store: Store, tz: str, root: str) -> tuple[HallsState, int, int]:
    """State from the newest usable snapshot plus the events stored after it.

    Returns (state, last seq applied, events replayed). A snapshot from another snapshot
    version or time zone is ignored and the whole log replayed, which gives the same state.
    """
    state, upto = HallsState(tz=tz), 0
    snap = await store.latest_snapshot()
    if snap is not None:
        loaded = state_mod.decode(snap[1])
        if loaded is not None and loaded.tz == tz:
            state, upto = loaded, snap[0]
        else:
            log.info("snapshot at seq %d is not usable here; replaying the whole log", snap[0])
    replayed = 0
    last = upto
    async for seq, topic, payload in store.events_after(upto):
        event = parse(topic, payload, root)
        last = seq
        if isinstance(event, Rejection):
            # Stored under another topic root or parser version; keep it, skip it.
            log.warning("stored event %d no longer parses: %s", seq, event.detail)
            continue
        state.apply(event)
        replayed += 1
    return state, last, replayed


class Daemon:
    """One running hallwatch: `await Daemon(settings).run(stop)`."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        disable_created_metrics()  # type: ignore[no-untyped-call]  # noise on a wall display
        self.registry = CollectorRegistry()
        self.metrics = IngestMetrics(self.registry)
        self.state = HallsState(
            tz=settings.hall.timezone, limits=Limits(**dataclasses.asdict(settings.limits))
        )
        self.registry.register(
            StateCollector(lambda: self.state, clock, settings.hall.heartbeat_timeout_s)
        )
        self.http_started = asyncio.Event()
        self.http: HttpServer | None = None
        self.ingest: Ingest | None = None
        self._snap_seq = 0
        self._since_snap = 0

    def health(self) -> tuple[bool, dict[str, Any]]:
        ing = self.ingest
        connected = bool(ing and ing.connected)
        return connected, {
            "mqtt_connected": connected,
            "events_applied": self.state.applied,
            "last_seq": ing.last_seq if ing else 0,
            "last_commit_at": ing.last_commit_at if ing else None,
        }

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        async with Store(s.store.path, synchronous=s.store.synchronous) as store:
            started = time.perf_counter()
            self.state, last, replayed = await restore(store, s.hall.timezone, s.mqtt.topic_root)
            self.state.limits = Limits(**dataclasses.asdict(s.limits))
            took = time.perf_counter() - started
            self.metrics.restore_seconds.set(took)
            self.metrics.restore_events.set(replayed)
            log.info(
                "state restored in %.3f s (%d events replayed, %d halls)",
                took,
                replayed,
                len(self.state.halls),
            )
            self._snap_seq = last
            if replayed:
                await self._snapshot(store, last)
            self.ingest = Ingest(
                s,
                store,
                self.state,
                self.metrics,
                clock=self.clock,
                on_batch=self._counted,
            )
            host, port = s.http.host_port()
            self.http = HttpServer(
                host,
                port,
                self.registry,
                lambda: self.state,
                self.health,
                self.clock,
                s.hall.heartbeat_timeout_s,
            )
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self.ingest.run(), name="ingest"),
                    tg.create_task(self.http.run(self.http_started), name="http"),
                    tg.create_task(self._snapshots(store), name="snapshots"),
                ]
                await self.http_started.wait()
                assert self.http.bound is not None
                log.info("serving http://%s:%d/metrics", *self.http.bound)
                await stop.wait()
                log.info("stopping: draining the current batch")
                for task in tasks:
                    task.cancel()
            if self.ingest.last_seq > self._snap_seq:
                await self._snapshot(store, self.ingest.last_seq)
        log.info("stopped")

    def _counted(self, applied: int) -> None:
        self._since_snap += applied

    async def _snapshots(self, store: Store) -> None:
        """Snapshot every `store.snapshot_every` applied events, checked once a second."""
        assert self.ingest is not None
        while True:
            await asyncio.sleep(1.0)
            if self._since_snap >= self.settings.store.snapshot_every:
                await self._snapshot(store, self.ingest.last_seq)

    async def _snapshot(self, store: Store, upto: int) -> None:
        # Encoded synchronously on the loop, so no event is applied between encode and `upto`.
        body = state_mod.encode(self.state)
        self._since_snap = 0
        self._snap_seq = upto
        await store.save_snapshot(upto, self.clock(), body)


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Daemon(settings).run(stop)
