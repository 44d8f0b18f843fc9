"""The P10-P90 range end to end: the real daemon, fed through Mosquitto, publishes it on the
estimate topic and the hall screen in headless Chromium says "约 a–b 分钟"."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiomqtt
from hallwatch.daemon.web.screen import range_minutes

from tests.daemon.web.test_screen import ARTIFACTS, Browser, until
from tests.daemon.web.test_screen_live import live, send  # noqa: F401 - the fixture
from tests.harness.live_daemon import LiveDaemon, token_of
from tests.harness.mosquitto import Mosquitto


async def test_the_estimate_topic_and_the_screen_carry_the_range(
    live: tuple[LiveDaemon, Mosquitto],  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    """One window for 提取 and eight tickets: each estimate message carries p10_s <= estimated
    wait <= p90_s (revision 0), /api/state gives 提取's wait with its range, and the screen's
    提取 row reads "约 a–b 分钟" with the row's estimate inside [a, b].
    Screenshot: artifacts/hall-screen-range-live.png."""
    d, mosq = live
    got: list[dict[str, Any]] = []
    async with aiomqtt.Client("127.0.0.1", mosq.port, identifier="range-test") as client:
        await client.subscribe("hall/h1/estimate", qos=1)
        send(mosq, [("hall/h1/window/w1", {"state": "open", "services": ["提取"]})])
        send(
            mosq,
            [
                ("hall/h1/ticket", {"type": "issued", "ticket": f"A{i:03d}", "service": "提取"})
                for i in range(8)
            ],
        )

        async def collect() -> None:
            async for msg in client.messages:
                got.append(json.loads(bytes(msg.payload)))  # type: ignore[arg-type]
                if len(got) == 8:
                    return

        await asyncio.wait_for(collect(), 20)
    for m in got:
        assert m["revision"] == 0 and m["estimated_wait_s"] is not None
        assert 0 <= m["p10_s"] <= m["estimated_wait_s"] <= m["p90_s"], m
    last = max(got, key=lambda m: m["estimated_wait_s"])
    assert last["p90_s"] - last["p10_s"] > 600  # seven ahead at one window: minutes of doubt

    reply = d.call("GET", "/api/screen/h1")
    assert reply.status == 200
    row = next(r for r in reply.json()["services"] if r["service"] == "提取")
    a, b = row["range_min"]
    assert a <= row["estimated_wait_min"] <= b and a < b
    assert row["p10_s"] <= row["estimated_wait_s"] <= row["p90_s"]

    reply = d.call("GET", "/api/state", token=token_of("state:read"))
    w = reply.json()["halls"]["h1"]["estimated_wait"]["提取"]
    assert w["p10_s"] <= w["estimated_wait_s"] <= w["p90_s"] and w["p10_s"] < w["p90_s"]

    rows_js = "[...document.querySelectorAll('#rows tr')].map(r => r.innerText)"
    async with Browser(tmp_path / "chromium") as browser:
        await browser.call("Page.navigate", url=f"http://{d.host}:{d.port}/screen/h1")

        async def ranged() -> bool:
            rows = [re.sub(r"\s", "", r) for r in await browser.js(rows_js) or []]
            return any(re.search(r"^提取.*约\d+–\d+分钟", r) for r in rows)

        await until(ranged, 20, "the 提取 row to read 约 a–b 分钟")
        ARTIFACTS.mkdir(exist_ok=True)
        await browser.screenshot(ARTIFACTS / "hall-screen-range-live.png")


def test_range_minutes_as_the_screen_says_them() -> None:
    """Whole minutes holding the estimate's minute, to fives past ten minutes; no range when it
    is a single minute or missing."""
    assert range_minutes(300.0, 200.0, 500.0) == [3, 9]
    assert range_minutes(1200.0, 830.0, 1490.0) == [10, 25]
    assert range_minutes(0.0, 0.0, 0.0) is None
    assert range_minutes(600.0, None, None) is None
    assert range_minutes(130.0, 200.0, 400.0) == [3, 7]  # widened to hold the estimate's 3
