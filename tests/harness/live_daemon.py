"""The real daemon (`main.Daemon`, every route as `hallwatch run` mounts it) served from a
thread with its own event loop, so synchronous tests and hypothesis can call its HTTP side with
the standard library, and read the app's route table."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from hallwatch.daemon.config import settings as config
from hallwatch.daemon.main import Daemon

#: One token per route scope (named after it), one with only pii:read, one with everything.
SCOPED = {
    "state:read",
    "alerts:read",
    "alerts:write",
    "alerts:forward",
    "reports:read",
    "complaints:read",
    "complaints:write",
    "callbacks:read",
    "callbacks:write",
    "overview:read",
}


def token_of(scope: str) -> str:
    return "tok-" + scope.replace(":", "-").replace("*", "all") + "-0123456789"


def config_text(db: Path, broker_url: str, extra: str = "", http: str = "") -> str:
    tables = [
        f"[api.tokens.{s.replace(':', '_').replace('*', 'all')}]\n"
        f'token = "{token_of(s)}"\nscopes = ["{s}"]\n'
        for s in sorted(SCOPED | {"pii:read", "*"})
    ]
    return (
        f'[mqtt]\nurl = "{broker_url}"\nclient_id = "live-{id(db)}"\n'
        f'[store]\npath = "{db}"\n'
        '[http]\nlisten = "127.0.0.1:0"\nrate_per_minute = 0\n' + http + "\n".join(tables) + extra
    )


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LiveDaemon:
    """`Daemon(settings).run(stop)` in a thread; `call` makes one HTTP request to it."""

    def __init__(
        self,
        workdir: Path,
        broker_url: str,
        extra_config: str = "",
        http_config: str = "",
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`extra_config`: more TOML tables; `http_config`: more lines of the [http] table;
        `clock`: the daemon's clock (a test may run it on a simulated day's time)."""
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "hallwatch.toml"
        text = config_text(workdir / "hallwatch.db", broker_url, extra_config, http_config)
        path.write_text(text, "utf-8")
        self.settings = config.load(path, {})
        self.daemon = Daemon(self.settings, clock=clock)
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-daemon", daemon=True)
        self.host, self.port = "127.0.0.1", 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as err:  # surfaced by start()
            self._error = err
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        await self.daemon.run(self._stop)

    def start(self) -> LiveDaemon:
        self._thread.start()
        for _ in range(600):
            http = self.daemon.http
            if http is not None and http.bound is not None:
                self.host, self.port = http.bound
                return self
            if self._error is not None or not self._thread.is_alive():
                break
            threading.Event().wait(0.05)
        raise RuntimeError(f"the daemon did not start serving: {self._error!r}")

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    @property
    def app(self) -> web.Application:
        assert self.daemon.http is not None
        return self.daemon.http.app

    def routes(self) -> list[tuple[str, str]]:
        """(method, pattern) of every route registered on the real app."""
        return sorted(
            {
                (r.method, r.resource.canonical)
                for r in self.app.router.routes()
                if r.resource is not None
            }
        )

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return Reply(resp.status, dict(resp.getheaders()), resp.read())
        finally:
            conn.close()
