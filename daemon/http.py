"""The daemon's HTTP side on its own event loop: /metrics, /healthz and /api/state."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from daemon.http_limits import rate_limit
from daemon.state import HallsState, waiting_counts


def state_summary(state: HallsState, now: float, heartbeat_timeout_s: float) -> dict[str, Any]:
    """A JSON-able summary per hall (what the status topic and the hall screen build on)."""
    halls: dict[str, Any] = {}
    for name, hall in sorted(state.halls.items()):
        day = state.day_at(hall, now)
        waiting: dict[str, dict[str, int]] = {}
        if day is not None:
            for (service, prio), n in sorted(waiting_counts(day).items()):
                waiting.setdefault(service, {})[prio] = n
        halls[name] = {
            "business_day": day.day.isoformat() if day else None,
            "headcount": day.occupancy if day else 0,
            "waiting": waiting,
            "windows": {
                w: {
                    "state": win.state,
                    "services": win.services,
                    "emergency": win.emergency,
                    "serving": win.serving,
                }
                for w, win in sorted(hall.windows.items())
            },
            "devices": {
                d: {
                    "kind": dev.kind,
                    "state": dev.state,
                    "up": dev.state == "online" and now - dev.last_seen <= heartbeat_timeout_s,
                    "last_seen": dev.last_seen,
                }
                for d, dev in sorted(hall.devices.items())
            },
            "systems": {
                s: {"state": sys_.state, "since": sys_.since, "detail": sys_.detail}
                for s, sys_ in sorted(hall.systems.items())
            },
            "last_event_at": hall.last_event_at,
        }
    return {"applied": state.applied, "halls": halls}


class HttpServer:
    """aiohttp app served until cancelled."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        state: Callable[[], HallsState],
        health: Callable[[], tuple[bool, dict[str, Any]]],
        clock: Callable[[], float],
        heartbeat_timeout_s: float,
        *,
        rate_per_minute: int = 120,
    ) -> None:
        self._host, self._port = host, port
        self._registry = registry
        self._state = state
        self._health = health
        self._clock = clock
        self._heartbeat = heartbeat_timeout_s
        self.bound: tuple[str, int] | None = None
        self.app = web.Application(
            client_max_size=64 * 1024, middlewares=[rate_limit(rate_per_minute)]
        )
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/api/state", self._api_state)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        ok, detail = self._health()
        return web.json_response({"ok": ok, **detail}, status=200 if ok else 503)

    async def _api_state(self, request: web.Request) -> web.Response:
        return web.json_response(state_summary(self._state(), self._clock(), self._heartbeat))

    async def run(self, started: asyncio.Event | None = None) -> None:
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=3.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, reuse_address=True)
        try:
            await site.start()
            server = site._server
            if server is not None and getattr(server, "sockets", None):
                sock = server.sockets[0].getsockname()  # type: ignore[attr-defined]
                self.bound = (str(sock[0]), int(sock[1]))
            if started is not None:
                started.set()
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
