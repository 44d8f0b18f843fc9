"""Local stand-ins for the notification providers, for the fault-and-load suite.

`FakeSmsGateway` is the generic SMS gateway of `alerts.channels.sms.GenericSms` (JSON body,
`Idempotency-Key` header), which, as that channel expects, answers a repeated key with success
without sending the SMS again; it can be told to fail (`fail = "http503"`) and to recover
(`fail = None`) from another thread while it runs in `ServerThread`. It records every request
with what it answered (a `Hit`), as the WeCom robot of tests/harness/alert_fakes.py does, so a
suite can count deliveries per notification.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web

from tests.harness.alert_fakes import Hit


@dataclass
class FakeSmsGateway:
    fail: str | None = None
    hits: list[Hit] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/sms", self.handle)
        return app

    @property
    def accepted(self) -> list[Hit]:
        return [h for h in self.hits if h.accepted]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = request.headers.get("Idempotency-Key", "")
        now = time.time()
        if self.fail is not None:
            self.hits.append(Hit(now, key, body, False))
            return web.Response(status=503, text="gateway unavailable")
        if key and any(h.accepted and h.key == key for h in self.hits):
            self.hits.append(Hit(now, key, body, False, deduped=True))
            return web.json_response({"ok": True, "duplicate": True})
        self.hits.append(Hit(now, key, body, True))
        return web.json_response({"ok": True})


class ServerThread:
    """aiohttp apps on free loopback ports, served from a thread with its own event loop."""

    def __init__(self, *apps: web.Application) -> None:
        self._apps = apps
        self.urls: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fake-providers", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as err:  # surfaced by start()
            self._error = err
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        runners = []
        try:
            for app in self._apps:
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                runners.append(runner)
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                port = runner.addresses[0][1]  # this runner's one site
                self.urls.append(f"http://127.0.0.1:{port}")
            self._ready.set()
            await self._stop.wait()
        finally:
            for runner in runners:
                await runner.cleanup()

    def start(self) -> list[str]:
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"fake providers did not start: {self._error!r}")
        return self.urls

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
