"""The customer-facing hall screen: its model, its routes, and the page in a real Chromium."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.web.screen import MAX_SLOTS, add_routes, screen_model
from hallwatch.daemon.web.server import HttpServer
from hallwatch.sensors.parse import parse
from hallwatch.sensors.profiles import PROFILES, hm
from hallwatch.sensors.simulator import epoch, simulate_day
from prometheus_client import CollectorRegistry

from tests import REPO as ROOT
from tests.factories import at, door_ev, issued, system_ev, ticket_ev, window_ev
from tests.harness.mosquitto import free_port

ARTIFACTS = ROOT / "artifacts"
DOCS_SHOT = ROOT / "docs" / "hall-screen.png"
T0 = at("2026-11-26T09:00")


def hall_state() -> HallsState:
    """A small hall at 09:30: two windows, six tickets in three classes, one called."""
    s = HallsState()
    for ev in (
        window_ev("w01", "open", T0, services=("提取", "缴存")),
        window_ev("w02", "open", T0, services=("提取",), emergency=True),
        window_ev("w03", "closed", T0, services=("贷款",)),
        door_ev("d1", 0, 0, T0),
        door_ev("d1", 12, 2, T0 + 600),
        issued("A001", T0 + 60, service="提取"),
        issued("A002", T0 + 70, service="提取", priority="green"),
        issued("A003", T0 + 80, service="提取", priority="appointment"),
        issued("A004", T0 + 90, service="提取"),
        issued("B001", T0 + 100, service="缴存"),
        issued("C001", T0 + 110, service="贷款"),
        ticket_ev("called", "A002", T0 + 200, window="w02"),
        system_ev("core", "up", T0),
    ):
        s.apply(ev)
    return s


NOW = T0 + 1800


# -- the model ---------------------------------------------------------------------------------


def test_unknown_hall_has_no_model():
    """A hall the daemon never heard of has no screen (the route answers 404)."""
    assert screen_model(hall_state(), "nowhere", NOW) is None


def test_waiting_per_service_and_class():
    """Each service shows its waiting tickets by class and its open windows; called tickets
    have left the queue; a service with only closed windows shows 0 open."""
    m = screen_model(hall_state(), "h1", NOW)
    assert m is not None
    rows = {r["service"]: r for r in m["services"]}
    assert [r["service"] for r in m["services"]] == sorted(rows)
    assert rows["提取"]["by_class"] == {"green": 0, "appointment": 1, "normal": 2}
    assert rows["提取"]["waiting"] == 3
    assert rows["提取"]["windows_open"] == 2
    assert rows["缴存"]["waiting"] == 1 and rows["缴存"]["windows_open"] == 1
    assert rows["贷款"]["waiting"] == 1 and rows["贷款"]["windows_open"] == 0
    assert m["waiting_total"] == 5
    assert m["headcount"] == 10
    assert m["windows_open"] == 2 and m["emergency_windows_open"] == 1
    assert m["green_channel"]["waiting"] == 0
    assert m["now_text"] == "09:30" and m["business_day"] == "2026-11-26"
    assert m["outage"] is None and m["peak"] is False
    json.dumps(m)  # JSON-able as it is


def test_green_channel_counts_green_tickets_of_every_service():
    """The green-channel figure sums green tickets across services."""
    s = hall_state()
    s.apply(issued("A005", T0 + 300, service="提取", priority="green"))
    s.apply(issued("B002", T0 + 310, service="缴存", priority="green"))
    m = screen_model(s, "h1", NOW)
    assert m is not None and m["green_channel"]["waiting"] == 2


def test_estimated_wait_in_seconds_and_whole_minutes():
    """The estimate is rounded to seconds and rounded up to minutes; None and NaN show none."""
    est = {"提取": 601.4, "缴存": None, "贷款": math.nan}
    m = screen_model(hall_state(), "h1", NOW, est_wait=est.get)
    assert m is not None
    rows = {r["service"]: r for r in m["services"]}
    assert (rows["提取"]["estimated_wait_s"], rows["提取"]["estimated_wait_min"]) == (601, 11)
    assert rows["缴存"]["estimated_wait_s"] is None and rows["缴存"]["estimated_wait_min"] is None
    assert rows["贷款"]["estimated_wait_s"] is None


@pytest.mark.parametrize(
    ("people", "wait", "peak"),
    [(19, 1199.0, False), (20, 0.0, True), (0, 1200.0, True)],
)
def test_peak_at_20_people_or_20_minutes(people: int, wait: float, peak: bool):
    """The plan's peak: 20 people in the hall or a 20-minute estimated wait."""
    s = HallsState()
    s.apply(window_ev("w01", "open", T0, services=("提取",)))
    s.apply(door_ev("d1", 0, 0, T0))
    s.apply(door_ev("d1", people, 0, T0 + 10))
    m = screen_model(s, "h1", NOW, est_wait=lambda _: wait)
    assert m is not None and m["peak"] is peak


def test_outage_notice_with_expected_recovery():
    """A system that is down puts up the plan's notice: the expected recovery time in the hall's
    zone and the paper / call-back offer; the internal detail is never shown."""
    s = hall_state()
    s.apply(system_ev("core", "down", at("2026-11-26T10:30"), detail="db01 unreachable"))
    m = screen_model(s, "h1", at("2026-11-26T10:40"), outage_recovery_at=at("2026-11-26T11:30"))
    assert m is not None and m["outage"] is not None
    assert m["outage"]["systems"] == ["core"]
    assert m["outage"]["since_text"] == "10:30"
    assert m["outage"]["expected_recovery_text"] == "11:30"
    assert "预计 11:30 恢复办理" in m["outage"]["message"]
    assert "留下联系电话" in m["outage"]["message"]
    assert "db01" not in json.dumps(m)
    unknown = screen_model(s, "h1", at("2026-11-26T10:40"))
    assert unknown is not None and "恢复时间确定后将及时公布" in unknown["outage"]["message"]
    s.apply(system_ev("core", "up", at("2026-11-26T11:20")))
    back = screen_model(s, "h1", at("2026-11-26T11:21"))
    assert back is not None and back["outage"] is None


def test_during_an_outage_no_service_says_no_wait():
    """While the system is down every service row says it is suspended and what to do (paper
    forms, a phone number), with no wait figure, even a service nobody waits for and whose
    window is open; once the system is back the rows are ordinary again."""
    s = hall_state()
    before = screen_model(s, "h1", at("2026-11-26T10:20"), est_wait=lambda _: 0.0)
    assert before is not None and {r["status"] for r in before["services"]} <= {"open", "closed"}
    s.apply(system_ev("core", "down", at("2026-11-26T10:30")))
    m = screen_model(s, "h1", at("2026-11-26T10:40"), est_wait=lambda _: 0.0)
    assert m is not None and m["services"]
    for row in m["services"]:
        assert row["status"] == "outage", row
        assert row["estimated_wait_s"] is None and row["estimated_wait_min"] is None
        assert "纸质材料" in row["status_text"] and "留电话" in row["status_text"]
    s.apply(system_ev("core", "up", at("2026-11-26T11:20")))
    back = screen_model(s, "h1", at("2026-11-26T11:21"), est_wait=lambda _: 0.0)
    assert back is not None and "outage" not in {r["status"] for r in back["services"]}


def test_degraded_system_is_a_softer_notice():
    """A degraded system is flagged, without the outage notice."""
    s = hall_state()
    s.apply(system_ev("core", "degraded", T0 + 900))
    m = screen_model(s, "h1", NOW)
    assert m is not None and m["degraded"] is True and m["outage"] is None


def test_slots_in_every_accepted_shape_in_time_order():
    """Slots from estimate.offpeak (date + hour), epoch or "HH:MM" strings come out formatted,
    in time order; past and malformed ones are dropped."""
    now = at("2026-11-26T10:00")
    slots: list[dict[str, Any]] = [
        {"date": "2026-11-27", "hour": 14, "avg_wait_s": 250.0, "label": "周五 14:00-15:00"},
        {"start": at("2026-11-26T15:00"), "end": at("2026-11-26T16:00"), "kind": "quiet"},
        {"date": "2026-11-30", "start": "09:00", "end": "11:00", "kind": "busy"},
        {"start": at("2026-11-26T09:00"), "end": at("2026-11-26T10:00")},  # over
        {"date": "2026-11-26", "hour": 9},  # over at 10:00
        {"date": "soon", "start": "x", "end": "y"},
        {"hour": 3},
    ]
    m = screen_model(hall_state(), "h1", now, quiet_slots=slots)
    assert m is not None
    got = [(x["date_text"], x["start"], x["end"], x["kind_text"]) for x in m["slots"]]
    assert got == [
        ("11月26日 周四", "15:00", "16:00", "低峰"),
        ("11月27日 周五", "14:00", "15:00", "低峰"),
        ("11月30日 周一", "09:00", "11:00", "高峰"),
    ]
    assert m["slots"][1]["avg_wait_min"] == 5
    many = [{"date": "2026-11-27", "hour": h} for h in range(9, 17)] * 2
    m = screen_model(hall_state(), "h1", now, quiet_slots=many)
    assert m is not None and len(m["slots"]) == MAX_SLOTS


# -- the routes --------------------------------------------------------------------------------


async def test_routes_serve_the_page_and_the_model():
    """GET /screen/{hall} is a self-contained Chinese page; /api/screen/{hall} is the model,
    uncached; unknown or malformed halls are 404."""
    state = hall_state()
    app = web.Application()
    add_routes(app, lambda hall: screen_model(state, hall, NOW))
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/api/screen/h1")
        assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
        assert await r.json() == json.loads(json.dumps(screen_model(state, "h1", NOW)))
        assert (await client.get("/api/screen/h9")).status == 404
        assert (await client.get("/api/screen/bad%20id")).status == 404
        page = await client.get("/screen/h1")
        assert page.status == 200 and page.content_type == "text/html"
        html = await page.text()
        assert 'lang="zh-CN"' in html and "绿色通道" in html and "重新连接中…" in html
        assert not re.search(
            r"(?:https?:)?//[\w.-]+\.\w", re.sub(r"<!--.*?-->", "", html, flags=re.S)
        )
        assert (await client.get("/screen/bad%20id")).status == 404


# -- the page in headless Chromium -----------------------------------------------------------


def chromium() -> str:
    for path in (shutil.which("chromium"), "/usr/bin/chromium", shutil.which("chromium-browser")):
        if path and Path(path).exists():
            return path
    pytest.fail(
        "chromium is not installed (Debian package chromium): run scripts/ensure-test-tools"
    )


class Browser:
    """Debian's Chromium, headless, driven over the DevTools protocol (no playwright needed)."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.proc: asyncio.subprocess.Process | None = None
        self.http: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._id = 0

    async def __aenter__(self) -> Browser:
        self.proc = await asyncio.create_subprocess_exec(
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={self.profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "--window-size=1920,1080",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        await until(lambda: _ready(port_file), 20, "chromium's DevTools port")
        port = int(port_file.read_text().split()[0])
        self.http = aiohttp.ClientSession()
        async with self.http.get(f"http://127.0.0.1:{port}/json/list") as r:
            pages = [t for t in await r.json() if t["type"] == "page"]
        self.ws = await self.http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1920,
            height=1080,
            deviceScaleFactor=1,
            mobile=False,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.http is not None:
            await self.http.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.ws is not None
        self._id += 1
        await self.ws.send_json({"id": self._id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json(timeout=30)
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})  # type: ignore[no-any-return]

    async def js(self, expression: str) -> Any:
        out = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        return out["result"].get("value")

    async def text(self) -> str:
        return str(await self.js("document.body.innerText"))

    async def screenshot(self, path: Path) -> None:
        shot = await self.call("Page.captureScreenshot", format="png")
        _save(path, base64.b64decode(shot["data"]))


def _save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _ready(port_file: Path) -> bool:
    return port_file.exists() and len(port_file.read_text().split()) >= 2


async def until(pred: Callable[[], bool | Awaitable[bool]], seconds: float, what: str) -> None:
    """Poll `pred` (sync or async) until true; fail the test naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        got = pred()
        if not isinstance(got, bool):
            got = await got
        if got:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.1)


class Daemon:
    """The daemon's own HTTP app (web.server.HttpServer) with the screen routes mounted, on a
    fixed port so it can be stopped and started again like a restarted daemon."""

    def __init__(self, port: int, model: Callable[[str], dict[str, Any] | None]) -> None:
        self.port, self.model = port, model
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        server = HttpServer(
            "127.0.0.1",
            self.port,
            CollectorRegistry(),
            HallsState,
            lambda: (True, {}),
            time.time,
            90.0,
        )
        add_routes(server.app, self.model)
        started = asyncio.Event()
        self.task = asyncio.create_task(server.run(started))
        await asyncio.wait_for(started.wait(), 10)

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def peak_morning() -> tuple[HallsState, float, dict[str, float]]:
    """The simulated peak day's hall at 10:40, and each service's mean service time."""
    profile = PROFILES["peak"]
    day = simulate_day(profile, seed=1)
    cut = epoch(profile, hm("10:40"))
    state = HallsState()
    for m in day.messages:
        if m.at >= cut:
            break
        event = parse(m.topic, json.dumps(m.payload).encode())
        assert not hasattr(event, "reason"), event
        state.apply(event)  # type: ignore[arg-type]
    return state, cut, {s.name: s.mean_s for s in profile.services}


async def test_hall_screen_in_chromium_live_and_through_a_restart(tmp_path: Path):
    """Headless Chromium shows the hall's live figures from /api/screen, updates them without
    reloading, keeps them with a "重新连接中…" note while the daemon is down, and carries on by
    itself (here with the outage notice) once it is back. Screenshots go to artifacts/."""
    state, now, mean_s = peak_morning()
    recovery: dict[str, float | None] = {"at": None}

    def est(service: str) -> float | None:
        # A stand-in for estimate.model: tickets ahead over the windows that serve them.
        m = screen_model(state, "h1", now)
        assert m is not None
        row = next(r for r in m["services"] if r["service"] == service)
        if not row["windows_open"]:
            return None
        return (row["waiting"] + 1) * mean_s[service] / row["windows_open"]

    slots = [
        {
            "date": time.strftime("%Y-%m-%d", time.gmtime(now + 8 * 3600 + 86400 * k)),
            "hour": h,
            "avg_wait_s": w,
        }
        for k, h, w in ((1, 14, 240.0), (1, 16, 180.0), (2, 9, 300.0), (3, 15, 200.0))
    ] + [
        {
            "date": time.strftime("%Y-%m-%d", time.gmtime(now + 8 * 3600 + 86400)),
            "start": "10:00",
            "end": "11:00",
            "kind": "busy",
        }
    ]

    def model(hall: str) -> dict[str, Any] | None:
        return screen_model(
            state, hall, now, est_wait=est, quiet_slots=slots, outage_recovery_at=recovery["at"]
        )

    first = model("h1")
    assert first is not None and first["waiting_total"] > 0
    port = free_port()
    daemon = Daemon(port, model)
    await daemon.start()
    url = f"http://127.0.0.1:{port}/screen/h1?title=市中心服务大厅"
    ARTIFACTS.mkdir(exist_ok=True)
    rows_js = "[...document.querySelectorAll('#rows tr')].map(r => r.innerText)"
    async with Browser(tmp_path / "chromium") as browser:
        await browser.call("Page.navigate", url=url)

        async def shows(m: dict[str, Any]) -> bool:
            rows = await browser.js(rows_js) or []
            want = [f"{r['service']}{r['waiting']}人" for r in m["services"]]
            return len(rows) == len(want) and all(
                re.sub(r"\s", "", row).startswith(w) for row, w in zip(rows, want, strict=True)
            )

        await until(lambda: shows(first), 15, "the page to show the live waiting counts")
        text = await browser.text()
        assert "市中心服务大厅" in text and "绿色通道" in text and "错峰办理提醒" in text
        assert f"约{first['services'][0]['estimated_wait_min']}分钟" in re.sub(r"\s", "", text)
        assert "当前为业务高峰期" in text  # 56 people in the hall at 10:40
        # The banner says only what was done: the emergency windows open, if any.
        assert "增加服务力量" not in text
        opened = first["emergency_windows_open"]
        assert (f"已增开应急窗口 {opened} 个" in text) == bool(opened) and (
            "已增开" in text
        ) == bool(opened)
        assert "重新连接中…" not in text
        await browser.js("window.__noReload = 42")
        await browser.screenshot(ARTIFACTS / "hall-screen.png")
        if not DOCS_SHOT.exists() or os.environ.get("HALLWATCH_UPDATE_SCREENSHOT"):
            DOCS_SHOT.parent.mkdir(exist_ok=True)
            shutil.copyfile(ARTIFACTS / "hall-screen.png", DOCS_SHOT)

        # Live: a new ticket shows up on the next poll, without a reload.
        state.apply(issued("A999", now, service="提取", priority="green"))
        second = model("h1")
        assert second is not None
        await until(lambda: shows(second), 10, "the new ticket on the page")
        assert await browser.js("document.getElementById('green').textContent") == str(
            second["green_channel"]["waiting"]
        )

        # The daemon goes away: the last figures stay, with the reconnecting note.
        await daemon.stop()
        await until(lambda: _note_shown(browser), 10, "the reconnecting note")
        assert await shows(second)

        # It comes back during a system outage: the page recovers by itself and posts the notice.
        state.apply(system_ev("core", "down", now - 600, hall="h1"))
        recovery["at"] = now + 3000
        await daemon.start()
        await until(lambda: _note_hidden(browser), 10, "the page to reconnect")
        text = await browser.text()
        assert "系统故障通知" in text and "恢复办理" in text and "留下联系电话" in text
        # No row promises "无需等待" while nothing can be done; each says what to do instead.
        rows = await browser.js(rows_js) or []
        assert rows and all("暂停办理" in r and "纸质材料" in r for r in rows), rows
        assert "无需等待" not in text
        assert await browser.js("window.__noReload") == 42
        await browser.screenshot(ARTIFACTS / "hall-screen-outage.png")
    await daemon.stop()


async def _note_shown(browser: Browser) -> bool:
    return "重新连接中…" in await browser.text()


async def _note_hidden(browser: Browser) -> bool:
    return "重新连接中…" not in await browser.text() and "系统故障通知" in await browser.text()
