"""The daemon's HTTP side: the app every route is mounted on, and /metrics, /healthz, /api/state.

`make_app` is the one place the app is built, so every route, whoever mounts it, passes the same
middlewares: the rate limit, authentication and authorisation (`web.auth`), and the body
deadline, in that order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from hallwatch.daemon.config import api
from hallwatch.daemon.core.state import HallsState, waiting_counts
from hallwatch.daemon.web import auth
from hallwatch.daemon.web.limits import body_deadline, rate_limit
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest


class ClientErrorFilter(logging.Filter):
    """aiohttp logs a malformed request (a NUL byte in a header, a broken request line) as an
    ERROR with its traceback, though it only answers 400: anyone could fill the log that way.
    Those records are dropped; a handler's own failure (a 500) is still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        return not (isinstance(err, HttpProcessingError) and 400 <= (err.code or 0) < 500)


_CLIENT_ERRORS = ClientErrorFilter()

MAX_BODY = 64 * 1024
LINGER_S = 1.0


def make_app(
    tokens: Iterable[api.Token] = (),
    *,
    rate_per_minute: int = 120,
    read_timeout_s: float = 10.0,
) -> web.Application:
    """The aiohttp app with hallwatch's middlewares; mount routes on it. Building it installs
    the client-error log filter (once: `addFilter` skips a filter already there), so importing
    this module changes no logger."""
    logging.getLogger("aiohttp.server").addFilter(_CLIENT_ERRORS)
    return web.Application(
        client_max_size=MAX_BODY,
        middlewares=[
            rate_limit(rate_per_minute),
            auth.middleware(tokens),
            body_deadline(read_timeout_s),
        ],
    )


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
        tokens: Iterable[api.Token] = (),
        read_timeout_s: float = 10.0,
    ) -> None:
        self._host, self._port = host, port
        self._registry = registry
        self._state = state
        self._health = health
        self._clock = clock
        self._heartbeat = heartbeat_timeout_s
        # Set by the daemon: hall -> per-service estimated waits for /api/state.
        self.waits: Callable[[str], dict[str, Any]] | None = None
        self.bound: tuple[str, int] | None = None
        self._read_timeout = read_timeout_s
        self.app = make_app(tokens, rate_per_minute=rate_per_minute, read_timeout_s=read_timeout_s)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/api/state", self._api_state)

    async def _metrics(self, request: web.Request) -> web.Response:
        # SafeRegistry's render: generate_latest's bytes, reusing unchanged lines (#14).
        render = getattr(self._registry, "render", None)
        body = render() if render is not None else generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        ok, detail = self._health()
        return web.json_response({"ok": ok, **detail}, status=200 if ok else 503)

    async def _api_state(self, request: web.Request) -> web.Response:
        body = state_summary(self._state(), self._clock(), self._heartbeat)
        if self.waits is not None:  # a new ticket's wait and its P10-P90 per service
            for name, hall in body["halls"].items():
                hall["estimated_wait"] = self.waits(name)
        return web.json_response(body)

    async def run(self, started: asyncio.Event | None = None) -> None:
        # keepalive_timeout: the request line and headers must arrive within it, from the
        # connection's first byte on (aiohttp 3.14.4+), and an idle connection closes after it.
        # lingering_time: after answering early (408, 413), how long the rest of a body is
        # still read before the connection closes (aiohttp's default: 10 s).
        runner = web.AppRunner(
            self.app,
            access_log=None,
            shutdown_timeout=3.0,
            keepalive_timeout=self._read_timeout,
            lingering_time=LINGER_S,
        )
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, reuse_address=True)
        try:
            await site.start()
            if runner.addresses:  # the bound (host, port, ...) of each socket: port 0 resolved
                sock = runner.addresses[0]
                self.bound = (str(sock[0]), int(sock[1]))
            if started is not None:
                started.set()
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
