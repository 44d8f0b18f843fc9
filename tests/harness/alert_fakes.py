"""Local HTTP servers that answer like the providers: WeCom robots, Aliyun and Tencent SMS,
a webhook sink, Alertmanager. Each records what it received and can be told to misbehave."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run `app` on a free loopback port; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@dataclass(frozen=True, slots=True)
class Hit:
    """One request a fake provider answered."""

    at: float  # wall clock
    key: str  # the robot key (WeCom) or the Idempotency-Key (SMS)
    body: dict[str, Any]
    accepted: bool  # the provider took it: a delivery the recipient sees
    deduped: bool = False  # answered as success, but a repeat of a key already delivered


@dataclass
class FakeWecom:
    """`POST /cgi-bin/webhook/send?key=K`, as a WeCom group robot answers: HTTP 200 with an
    errcode; 20 a minute per key (scaled by `window_s`), else 45009; 93000 for a key that is
    not a robot's; 40058 for content over the markdown/text limit. No idempotency key, so a
    message sent twice is shown twice. `script` forces the next answers (an errcode, "slow", or
    an HTTP status); `fail` ("http500" | "45009") fails every request until set to None, also
    from another thread. Every request is a `Hit` in `hits`."""

    limit: int = 20
    window_s: float = 60.0
    delay_s: float = 0.0
    fail: str | None = None
    script: deque[Any] = field(default_factory=deque)
    hits: list[Hit] = field(default_factory=list)
    over_limit: int = 0

    @property
    def accepted(self) -> list[Hit]:
        """The messages the group shows."""
        return [h for h in self.hits if h.accepted]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/cgi-bin/webhook/send", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        body = await request.json()
        now = time.time()
        slot = len(self.hits)  # hits stay in arrival order, also when an answer is slow
        self.hits.append(Hit(now, key, body, False))
        errcode, status = await self._forced()
        if errcode is None and status is None:
            errcode = self._check(key, body, now)
        self.hits[slot] = Hit(now, key, body, errcode == 0 and status is None)
        if status is not None:
            return web.Response(status=status, text="busy")
        return web.json_response({"errcode": errcode, "errmsg": "ok" if errcode == 0 else "fail"})

    async def _forced(self) -> tuple[int | None, int | None]:
        """(errcode, HTTP status) that `fail`, `delay_s` or `script` force, or (None, None)."""
        if self.fail == "http500":
            return None, 500
        if self.fail == "45009":
            return 45009, None
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.script:
            action = self.script.popleft()
            if action == "slow":
                await asyncio.sleep(1.0)
            elif isinstance(action, int) and 100 <= action < 600 and action != 45009:
                return None, action
            elif isinstance(action, int):
                return action, None
        return None, None

    def _check(self, key: str, body: dict[str, Any], now: float) -> int:
        """The robot's own errcode for a request nothing forced: 0 when it is shown."""
        if key != "good-key" and not key.startswith("robot-"):
            return 93000
        recent = [h for h in self.accepted if h.key == key and h.at > now - self.window_s]
        if len(recent) >= self.limit:
            self.over_limit += 1
            return 45009
        msgtype = body.get("msgtype")
        content = body.get(msgtype, {}).get("content", "")
        if len(content.encode()) > (4096 if msgtype == "markdown" else 2048):
            return 40058
        return 0


def aliyun_expected_signature(params: dict[str, str], secret: str, method: str) -> str:
    """The server side of Aliyun's RPC signature, written from the documented steps."""

    def enc(s: str) -> str:
        return quote(s, safe="~").replace("+", "%20").replace("*", "%2A")

    canon = "&".join(f"{enc(k)}={enc(params[k])}" for k in sorted(params) if k != "Signature")
    to_sign = method + "&" + enc("/") + "&" + enc(canon)
    mac = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


@dataclass
class FakeAliyun:
    secret: str
    script: deque[Any] = field(default_factory=deque)
    received: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.received.append(form)
        if form.get("Signature") != aliyun_expected_signature(form, self.secret, "POST"):
            return web.json_response(
                {"Code": "SignatureDoesNotMatch", "Message": "bad signature"}, status=400
            )
        if self.script:
            code = self.script.popleft()
            if isinstance(code, int):
                return web.Response(status=code)
            return web.json_response({"Code": code, "Message": "scripted", "RequestId": "r"})
        return web.json_response(
            {"Code": "OK", "Message": "OK", "BizId": "900619", "RequestId": "r"}
        )


@dataclass
class FakeTencent:
    secret_id: str
    secret_key: str
    script: deque[Any] = field(default_factory=deque)
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/", self.handle)
        return app

    def expected(self, headers: dict[str, str], body: bytes) -> str:
        ts = int(headers["X-TC-Timestamp"])
        date = time.strftime("%Y-%m-%d", time.gmtime(ts))
        canon = (
            f"POST\n/\n\ncontent-type:{headers['Content-Type']}\nhost:{headers['Host']}\n\n"
            f"content-type;host\n{hashlib.sha256(body).hexdigest()}"
        )
        to_sign = (
            f"TC3-HMAC-SHA256\n{ts}\n{date}/sms/tc3_request\n"
            f"{hashlib.sha256(canon.encode()).hexdigest()}"
        )

        def mac(k: bytes, m: str) -> bytes:
            return hmac.new(k, m.encode(), hashlib.sha256).digest()

        k = mac(mac(mac(("TC3" + self.secret_key).encode(), date), "sms"), "tc3_request")
        sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        return (
            f"TC3-HMAC-SHA256 Credential={self.secret_id}/{date}/sms/tc3_request, "
            f"SignedHeaders=content-type;host, Signature={sig}"
        )

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        data = json.loads(body)
        self.received.append((headers, data))
        if headers.get("Authorization") != self.expected(headers, body):
            err = {"Code": "AuthFailure.SignatureFailure", "Message": "bad signature"}
            return web.json_response({"Response": {"Error": err, "RequestId": "r"}})
        if self.script:
            code = self.script.popleft()
            if code.startswith("Error:"):
                err = {"Code": code[6:], "Message": "scripted"}
                return web.json_response({"Response": {"Error": err, "RequestId": "r"}})
            status = [
                {"Code": code, "Message": "scripted", "PhoneNumber": p}
                for p in data["PhoneNumberSet"]
            ]
            return web.json_response({"Response": {"SendStatusSet": status, "RequestId": "r"}})
        status = [
            {
                "SerialNo": "2028:1",
                "PhoneNumber": p,
                "Fee": 1,
                "SessionContext": data.get("SessionContext", ""),
                "Code": "Ok",
                "Message": "send success",
                "IsoCode": "CN",
            }
            for p in data["PhoneNumberSet"]
        ]
        return web.json_response({"Response": {"SendStatusSet": status, "RequestId": "r"}})


@dataclass
class Sink:
    """A webhook / SMS gateway / Alertmanager receiver that dedupes by Idempotency-Key."""

    delay_s: float = 0.0
    script: deque[int] = field(default_factory=deque)
    received: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)
    processed: dict[str, Any] = field(default_factory=dict)

    def app(self, *paths: str) -> web.Application:
        app = web.Application()
        for p in paths or ("/hook",):
            app.router.add_post(p, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = request.headers.get("Idempotency-Key", "")
        self.received.append((key, body, dict(request.headers)))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.script:
            status = self.script.popleft()
            if status != 200:
                return web.Response(status=status, text="scripted")
        self.processed.setdefault(key or str(len(self.received)), body)
        return web.json_response({"ok": True})
