"""The hall screen of the real daemon, fed through Mosquitto, in headless Chromium, during an
information-system outage (plan 4.3): the notice, and no service row promising "无需等待"."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hallwatch.sensors.publish import publish_all

from tests.daemon.web.test_screen import ARTIFACTS, Browser, until
from tests.harness.live_daemon import LiveDaemon
from tests.harness.mosquitto import Mosquitto


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveDaemon, Mosquitto]]:
    mosq = Mosquitto(tmp_path / "mosquitto")
    mosq.start()
    d = LiveDaemon(tmp_path / "daemon", mosq.url).start()
    yield d, mosq
    d.stop()
    mosq.stop()


def send(mosq: Mosquitto, events: list[tuple[str, dict[str, object]]]) -> None:
    now_ms = int(time.time() * 1000)
    msgs = [
        (topic, json.dumps({"id": f"s:{now_ms}:{i}", "ts": now_ms, **body}).encode())
        for i, (topic, body) in enumerate(events)
    ]
    publish_all("127.0.0.1", mosq.port, msgs)


async def test_the_screen_during_an_outage_says_what_to_do(
    live: tuple[LiveDaemon, Mosquitto], tmp_path: Path
) -> None:
    """Two open windows, nobody waiting for 提取 and two people for 贷款: the screen shows 无需等待
    for 提取; once the core system is reported down it shows the outage notice and, for every
    service, 暂停办理 with what to do instead (paper, a phone number); back up, the rows are
    ordinary again. Screenshot: artifacts/hall-screen-outage-live.png."""
    d, mosq = live
    send(
        mosq,
        [
            ("hall/h1/window/w1", {"state": "open", "services": ["提取"]}),
            ("hall/h1/window/w2", {"state": "open", "services": ["贷款"]}),
            ("hall/h1/ticket", {"type": "issued", "ticket": "B001", "service": "贷款"}),
            ("hall/h1/ticket", {"type": "issued", "ticket": "B002", "service": "贷款"}),
        ],
    )
    rows_js = "[...document.querySelectorAll('#rows tr')].map(r => r.innerText)"
    async with Browser(tmp_path / "chromium") as browser:
        await browser.call("Page.navigate", url=f"http://{d.host}:{d.port}/screen/h1")

        async def rows() -> list[str]:
            return list(await browser.js(rows_js) or [])

        async def calm() -> bool:
            got = await rows()
            free = [r for r in got if r.startswith("提取") and "无需等待" in r]
            return len(got) == 2 and bool(free) and "暂停办理" not in " ".join(got)

        await until(calm, 20, "提取 with no wait and 贷款 with its queue")
        send(mosq, [("hall/h1/system/core", {"state": "down", "detail": "db01 unreachable"})])

        async def outage() -> bool:
            got = await rows()
            return bool(got) and all("暂停办理" in r and "纸质材料" in r for r in got)

        await until(outage, 20, "every row suspended with what to do")
        text = await browser.text()
        assert "系统故障通知" in text and "留下联系电话" in text
        assert "无需等待" not in text and "db01" not in text
        ARTIFACTS.mkdir(exist_ok=True)
        await browser.screenshot(ARTIFACTS / "hall-screen-outage-live.png")
        send(mosq, [("hall/h1/system/core", {"state": "up"})])
        await until(calm, 20, "the ordinary rows once the system is back")
