"""Acknowledging an alert from a phone (issue 15), through real processes: door and window events
through Mosquitto into the real daemon, its rules, outbox and dispatcher, to a WeCom-style robot;
the link read from the robot's message opened in headless Chromium with a phone's viewport;
the acknowledgement stops the repeats and is in the database and the report.

The daemon runs on a simulated Monday's clock (a pinned workday, hours 09:00-17:00), stepped by
the test; every step waits until the daemon's alert tick has evaluated the hall at that time."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import stat
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from hallwatch.daemon.base import signing
from hallwatch.daemon.reports.history import connect, read_acks
from hallwatch.sensors.publish import publish_all

from tests.alerts.test_lunch_gap_live import Clock, door, hhmm, ticked, until, window
from tests.daemon.web.test_screen import ARTIFACTS, Browser
from tests.daemon.web.test_screen import until as until_async
from tests.factories import at
from tests.harness.alert_fakes import FakeWecom, serve
from tests.harness.live_daemon import LiveDaemon, Reply, token_of
from tests.harness.mosquitto import Mosquitto

DAY = "2026-11-30"  # a Monday
LINK = re.compile(r"\]\((https://hw\.example\.cn/ack/[A-Za-z0-9_-]{30})\)")
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


def t(hhmm_: str) -> float:
    return at(f"{DAY}T{hhmm_}")


def config(robot_url: str) -> str:
    return f"""
[calendar]
workdays = ["{DAY}"]
complete_years = [2026, 2027]

[alerts]
open = "09:00"
close = "17:00"

[alerts.queue_peak]
repeat_s = 300.0

[alerts.wecom]
url = "{robot_url}/cgi-bin/webhook/send"

[alerts.wecom.robots.supervisor]
key = "robot-supervisor"

[alerts.roles.supervisor]
wecom = ["supervisor"]

[duty]
public_url = "https://hw.example.cn"
link_ttl_s = 1200.0

[duty.roles.supervisor.people.zhang]
name = "张伟"
phone = "13800000001"
wecom = "zhangwei"
days = ["mon", "tue", "wed", "thu", "fri"]
start = "08:30"
end = "17:30"

[duty.roles.supervisor.people.wang]
name = "王芳"
days = ["sat", "sun"]

[duty.roles.director.people.li]
name = "李主任"
"""


def texts(wecom: FakeWecom) -> list[str]:
    return [h.body["markdown"]["content"] for h in wecom.accepted if "markdown" in h.body]


def local_path(url: str) -> str:
    """The link's path: the test reaches the daemon directly, not through the public host."""
    return urlsplit(url).path


def outbox(db: Path) -> list[tuple[str, float]]:
    con = sqlite3.connect(db)
    try:
        return [(str(k), float(c)) for k, c in con.execute("SELECT key, created FROM alert_outbox")]
    finally:
        con.close()


async def step(
    d: LiveDaemon,
    clock: Clock,
    broker: Mosquitto,
    at_: float,
    sent: list[int],
    pubs: list[tuple[str, bytes]] | None = None,
) -> None:
    """Publish `pubs`, set the daemon's clock to `at_` and wait for its tick there."""
    clock.now = at_
    if pubs:
        await asyncio.to_thread(publish_all, "127.0.0.1", broker.port, pubs)
        sent[0] += len(pubs)
    await until(ticked(d, at_, sent[0]), f"the tick at {hhmm(at_)}")


async def acknowledge_in_chromium(base: str, path: str, tmp_path: Path) -> str:
    """Open the link on a phone-sized screen, pick 张伟, 2 windows, a note; submit; the page's
    text after. Screenshot of the filled form: artifacts/ack-page-phone.png."""
    async with Browser(tmp_path / "chromium") as b:
        await b.call("Emulation.setDeviceMetricsOverride", **PHONE)
        await b.call("Page.navigate", url=base + path)

        async def loaded() -> bool:
            return "停止重复提醒" in str(await b.js("document.body && document.body.innerText"))

        await until_async(loaded, 20, "the acknowledgement page")
        people = await b.js("[...document.querySelectorAll('label.pick')].map(l => l.innerText)")
        assert [p.split()[0] for p in people] == ["张伟"], people  # 王芳 is on weekends only
        assert "大厅负责人" in await b.text() and "排队高峰" in await b.text()
        windows = await b.js(
            "[...document.querySelectorAll('input[name=windows]')].map(i => i.value)"
        )
        assert windows == ["0", "1", "2", "3"]  # the hall has three windows
        assert await b.js("window.innerWidth") == 390
        await b.js("document.querySelector('input[name=person][value=zhang]').click()")
        await b.js("document.querySelector('input[name=windows][value=\"2\"]').click()")
        await b.js("document.querySelector('textarea').value = '已开2个应急窗口，绿色通道已开'")
        ARTIFACTS.mkdir(exist_ok=True)
        await b.screenshot(ARTIFACTS / "ack-page-phone.png")
        await b.js("document.querySelector('button[type=submit]').click()")

        async def done() -> bool:
            return "重复提醒已停止" in str(await b.js("document.body && document.body.innerText"))

        await until_async(done, 20, "the page saying the alert is acknowledged")
        await b.screenshot(ARTIFACTS / "ack-page-phone-done.png")
        return await b.text()


def refusals(d: LiveDaemon) -> dict[str, float]:
    metrics = d.call("GET", "/metrics").body.decode()
    found = re.findall(r'hallwatch_ack_page_refused_total\{reason="(\w+)"\} ([0-9.]+)', metrics)
    return {r: float(n) for r, n in found}


def form(token: str, **fields: str) -> bytes:
    return "&".join(f"{k}={quote(v)}" for k, v in {"token": token, **fields}.items()).encode()


def post(d: LiveDaemon, path: str, body: bytes) -> Reply:
    return d.call(
        "POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )


async def test_a_supervisor_acknowledges_from_the_phone_and_the_repeats_stop(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """25 people at 10:00 fire queue_peak at 10:01 to the supervisor's robot with a signed link;
    unacknowledged it repeats at 10:06 (repeat_s 300). Opened on a 390x844 screen, the page
    offers the supervisor on duty (张伟, not the weekend's 王芳) and 0-3 windows; 张伟 with 2
    windows acknowledges at 10:08. No repeat follows up to 10:22 (three more intervals); the
    ack (person, role, windows, note) is in the database and in the report. A second submit
    changes nothing; tampered links answer 403, the 10:01 link at 10:22 answers 410 (ttl 20
    min), both counted and logged without the token; a bad form answers 400; the SMS code
    entered at /ack leads to the page; once the peak has resolved the link answers 410."""
    caplog.set_level(logging.INFO)
    wecom, clock, sent = FakeWecom(), Clock(t("10:00")), [0]
    async with serve(wecom.app()) as url:
        d = LiveDaemon(tmp_path / "d", broker.url, config(url), clock=clock)
        await asyncio.to_thread(d.start)
        base = f"http://{d.host}:{d.port}"
        try:
            opening = [window(w, "open", t("09:59"), ("提取",)) for w in ("w1", "w2", "w3")]
            await step(d, clock, broker, t("09:59"), sent, [*opening, door(t("09:59"), 0, 0)])
            await step(d, clock, broker, t("10:00"), sent, [door(t("10:00"), 25, 0)])
            await step(d, clock, broker, t("10:01"), sent)
            await until(lambda: len(texts(wecom)) == 1, "the firing message at the robot")
            first = texts(wecom)[0]
            print(first)
            assert "【排队高峰告警】" in first and "开始 10:01" in first
            assert first.endswith("<@zhangwei>")  # the supervisor on duty (roster) is @mentioned
            link = LINK.search(first)
            assert link, first
            await step(d, clock, broker, t("10:06"), sent)
            await until(lambda: len(texts(wecom)) == 2, "the unacknowledged repeat at 10:06")
            repeat_link = LINK.search(texts(wecom)[1])
            assert repeat_link and repeat_link[1] != link[1]  # a new expiry: a new token
            clock.now = t("10:08")
            await asyncio.to_thread(invalid_forms, d, local_path(repeat_link[1]))
            page = await acknowledge_in_chromium(base, local_path(repeat_link[1]), tmp_path)
            assert "张伟（大厅负责人）已开应急窗口2个" in page and "10:08" in page
            for hm in ("10:12", "10:17", "10:22"):
                await step(d, clock, broker, t(hm), sent)
            await asyncio.sleep(1.0)  # a repeat would be sent by now
            assert len(texts(wecom)) == 2, texts(wecom)[2:]
            checks_over_http(d, local_path(link[1]), local_path(repeat_link[1]), tmp_path)
            await step(d, clock, broker, t("10:23"), sent, [door(t("10:23"), 25, 25)])
            await step(d, clock, broker, t("10:25"), sent)  # clear for 120 s: resolved
            over = d.call("GET", local_path(repeat_link[1]))  # valid until 10:26
            assert over.status == 410 and "告警已结束" in over.body.decode()
        finally:
            await asyncio.to_thread(d.stop)
    db = tmp_path / "d" / "hallwatch.db"
    rows = outbox(db)
    repeats = [(k, c) for k, c in rows if ":queue_peak:" in k and "-repeat" in k]
    assert [hhmm(c) for _, c in repeats] == ["10:06"], rows
    ack_id = repeats[0][0].split("/")[0]
    con = connect(db)
    try:
        details = con.execute("SELECT * FROM alert_ack_details").fetchall()
        acks = read_acks(con)
    finally:
        con.close()
    print(details)
    ((alert_id, hall, role, pid, person, windows, note, acked_at),) = details
    assert alert_id == ack_id
    assert (hall, role, pid, person, windows) == ("h1", "supervisor", "zhang", "张伟", 2)
    assert note == "已开2个应急窗口，绿色通道已开" and acked_at == t("10:08")
    (ack,) = acks
    assert ack.acked_by == "张伟（大厅负责人）已开应急窗口2个；备注：已开2个应急窗口，绿色通道已开"
    assert ack.acked_at == t("10:08")
    for rec in caplog.records:
        assert link[1].rsplit("/", 1)[1] not in rec.getMessage()


def invalid_forms(d: LiveDaemon, path: str) -> None:
    """A person not of the role's roster, more windows than the hall has, a note over 200
    characters: 400 with the form again and the reason; nothing acknowledged."""
    token = path.rsplit("/", 1)[1]
    for fields, says in (
        ({"person": "li", "windows": "1"}, "请选择您的姓名"),  # 李主任 is the director's
        ({"person": "zhang", "windows": "4"}, "应急窗口数不对"),
        ({"person": "zhang", "windows": "1", "note": "长" * 201}, "备注请在200字以内"),
    ):
        reply = post(d, path, form(token, **fields))
        assert reply.status == 400 and says in reply.body.decode(), fields
    assert (
        d.call("GET", "/api/v1/alerts", token_of("alerts:read")).json()["alerts"][0]["acked_by"]
        is None
    )


def checks_over_http(d: LiveDaemon, old: str, current: str, tmp_path: Path) -> None:
    """The page's answers to a second submit, tampered and expired links, a code; its headers."""
    token = current.rsplit("/", 1)[1]
    page = d.call("GET", current)
    assert page.status == 200 and "此告警已确认" in page.body.decode()
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    again = post(d, current, form(token, person="zhang", windows="3"))
    assert again.status == 200 and "已开应急窗口2个" in again.body.decode()  # unchanged
    before = refusals(d)
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    bad = d.call("GET", f"/ack/{tampered}")
    assert bad.status == 403 and "链接无效" in bad.body.decode()
    swapped = post(d, current, form(tampered, person="zhang", windows="1"))
    assert swapped.status == 403  # the body's token must be the path's
    expired = d.call("GET", old)  # sent 10:01, valid 20 minutes; it is 10:22
    assert expired.status == 410 and "链接已过期" in expired.body.decode()
    after = refusals(d)
    assert after["forged"] - before["forged"] == 2 and after["expired"] - before["expired"] == 1
    key_file = tmp_path / "d" / "ack-link.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    alert_id = d.call("GET", "/api/v1/alerts", token_of("alerts:read")).json()["alerts"][0][
        "alert_id"
    ]
    code = signing.code(key_file.read_text().strip().encode(), alert_id, "supervisor", "h1")
    entry = d.call("GET", f"/ack?code={code.lower()[:5]}-{code.lower()[5:]}")
    assert entry.status == 303 and entry.headers["Location"] == f"ack/{code}"
    assert "此告警已确认" in d.call("GET", f"/ack/{code}").body.decode()
    report = d.call("GET", f"/api/report?from={DAY}&to={DAY}&hall=h1", token_of("reports:read"))
    shown = "张伟（大厅负责人）已开应急窗口2个；备注：已开2个应急窗口，绿色通道已开"
    assert report.status == 200 and shown in report.body.decode()


async def test_a_link_sent_before_a_restart_still_opens_the_page(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """The key generated at the first start (ack-link.key, 0600) is reused by the restarted
    daemon: the link of the 10:01 message still opens the form at 10:03, from the new process."""
    wecom, clock, sent = FakeWecom(), Clock(t("09:59")), [0]
    async with serve(wecom.app()) as url:
        d = LiveDaemon(tmp_path / "d", broker.url, config(url), clock=clock)
        await asyncio.to_thread(d.start)
        try:
            opening = [window(w, "open", t("09:59"), ("提取",)) for w in ("w1", "w2", "w3")]
            await step(d, clock, broker, t("09:59"), sent, [*opening, door(t("09:59"), 0, 0)])
            await step(d, clock, broker, t("10:00"), sent, [door(t("10:00"), 25, 0)])
            await step(d, clock, broker, t("10:01"), sent)
            await until(lambda: len(texts(wecom)) == 1, "the firing message at the robot")
        finally:
            await asyncio.to_thread(d.stop)
        link = LINK.search(texts(wecom)[0])
        assert link
        key = (tmp_path / "d" / "ack-link.key").read_bytes()
        clock.now = t("10:03")
        again = LiveDaemon(tmp_path / "d", broker.url, config(url), clock=clock)
        await asyncio.to_thread(again.start)
        try:
            page = again.call("GET", local_path(link[1]))
        finally:
            await asyncio.to_thread(again.stop)
    assert page.status == 200 and "确认收到，停止重复提醒" in page.body.decode()
    assert (tmp_path / "d" / "ack-link.key").read_bytes() == key
