"""The centre overview across shards, as real processes: two `hallwatch run` on one private
PostgreSQL and one Mosquitto, each owning its halls (`mqtt.halls`); each one's /api/overview
ranks the other's halls with its own, and a killed shard's halls turn stale."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from hallwatch.sensors.publish import publish_all

from tests.conftest import DaemonProcess, wait_until
from tests.daemon.web.test_screen import Browser, until
from tests.harness.mosquitto import Mosquitto

TOKEN = "tok-overview-shards-0123456789"
KEEPALIVE_S = 2.0
SHOT = Path("/tmp/overview-shards.png")  # for the lead; not in the repository
# Open all day, today a working day: the figures must not depend on when the test runs.
_TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date()


def config(path: Path, halls: list[str], keepalive_s: float = KEEPALIVE_S) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""
[mqtt]
halls = {json.dumps(halls)}
[store]
overview_keepalive_s = {keepalive_s}
[http]
rate_per_minute = 0
[api.tokens.ov]
token = "{TOKEN}"
scopes = ["overview:read"]
[hall]
closing = "23:59"
[calendar]
workdays = ["{_TODAY.isoformat()}"]
complete_years = [{_TODAY.year}, {_TODAY.year + 1}]
[alerts]
open = "00:00"
close = "23:59"
""",
        "utf-8",
    )
    return path


def shard(
    make: Callable[..., DaemonProcess],
    tmp: Path,
    broker: Mosquitto,
    url: str,
    name: str,
    halls: list[str],
    keepalive_s: float = KEEPALIVE_S,
) -> DaemonProcess:
    d = make(
        broker.url,
        extra_env={
            "HALLWATCH_STORE_URL": url,
            "HALLWATCH_STORE_INSTANCE": name,
            "HALLWATCH_MQTT_CLIENT_ID": f"hallwatch-shard-{name}",
            "HALLWATCH_CONFIG": str(config(tmp / f"{name}.toml", halls, keepalive_s)),
        },
    )
    d.env["HALLWATCH_MQTT_CLIENT_ID"] = f"hallwatch-shard-{name}"
    return d


def people(broker: Mosquitto, counts: dict[str, int], run: str, *, first: bool = False) -> None:
    """Each hall's door counter at `counts` people in; `first`: a window opens and the counter
    starts from 0 (its first reading is the baseline)."""
    now_ms = int(time.time() * 1000)
    msgs = []
    for hall, n in sorted(counts.items()):
        events: list[tuple[str, dict[str, Any]]] = [(f"hall/{hall}/door/d1", {"in_total": n})]
        if first:
            events[:0] = [
                (f"hall/{hall}/window/w1", {"state": "open", "services": ["提取"]}),
                (f"hall/{hall}/door/d1", {"in_total": 0}),
            ]
        for j, (topic, body) in enumerate(events):
            body = {"id": f"sh:{run}:{hall}:{j}", "ts": now_ms, "out_total": 0, **body}
            msgs.append((topic, json.dumps(body, ensure_ascii=False).encode()))
    publish_all("127.0.0.1", broker.port, msgs)


def overview(d: DaemonProcess) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{d.base}/api/overview", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(req, timeout=5) as reply:
        got: dict[str, Any] = json.loads(reply.read())
    return got


async def page_text(d: DaemonProcess, profile: Path, shot: Path) -> str:
    """What headless Chromium shows at /overview once it has drawn the stale cards."""
    async with Browser(profile) as browser:
        await browser.call("Page.navigate", url=f"{d.base}/overview#token={TOKEN}")
        stale = "document.querySelectorAll('#halls .hall.stale').length"

        async def drawn() -> bool:
            return bool(await browser.js(stale))

        await until(drawn, 20, "the stale cards")
        await browser.screenshot(shot)
        return await browser.text()


def rows(d: DaemonProcess) -> dict[str, dict[str, Any]]:
    return {r["hall"]: r for r in overview(d)["halls"]}


def test_shards_rank_each_others_halls_and_a_dead_shards_turn_stale(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess], pg_url: str, tmp_path: Path
) -> None:
    """Shard a (east, west) and shard b (north, south) each hold only their halls; a's and b's
    overviews both rank all four by pressure (b's from the shared table, named by instance);
    a change in b shows in a within seconds; one row per hall in the table; after b is killed
    with -9, its halls turn stale in a's overview after 3 keep-alives, said in Chinese."""
    a = shard(daemon_factory, tmp_path, broker, pg_url, "a", ["east", "west"])
    b = shard(daemon_factory, tmp_path, broker, pg_url, "b", ["north", "south"])
    a.start()
    b.start()
    people(broker, {"east": 10, "west": 30, "north": 60, "south": 5}, "1", first=True)
    order = ["north", "west", "east", "south"]  # headcount against the peak mark of 20

    def ranked(d: DaemonProcess) -> bool:
        return [r["hall"] for r in overview(d)["halls"]] == order

    wait_until(lambda: ranked(a) and ranked(b), 30, "both overviews to rank all four halls")
    ra, rb = rows(a), rows(b)
    # Each shard holds its own halls only (mqtt.halls): the other's rows come from the table.
    assert {h: r["instance"] for h, r in ra.items()} == {
        "east": "a",
        "west": "a",
        "north": "b",
        "south": "b",
    }
    assert {h: r["instance"] for h, r in rb.items()} == {h: r["instance"] for h, r in ra.items()}
    assert a.sample("hallwatch_hall_headcount", hall="north") is None
    assert [ra[h]["headcount"] for h in order] == [60, 30, 10, 5]
    assert ra["north"]["level"] == "peak" and ra["north"]["pressure"] == 3.0
    assert not any(r["stale"] for r in ra.values())
    assert overview(a)["totals"]["halls"] == 4 and overview(a)["totals"]["headcount"] == 105
    # A change in shard b reaches shard a's overview.
    people(broker, {"south": 90}, "2")
    wait_until(lambda: rows(a)["south"]["headcount"] == 90, 15, "b's change to reach a")
    assert overview(a)["halls"][0]["hall"] == "south"
    with psycopg.connect(pg_url) as con:
        table = con.execute("SELECT hall, instance FROM hallwatch.hall_overview ORDER BY hall")
        assert table.fetchall() == [("east", "a"), ("north", "b"), ("south", "b"), ("west", "a")]
    # Shard b dies: its rows stay, and turn stale once they are older than 3 keep-alives.
    b.kill9()
    killed = time.monotonic()
    assert not rows(a)["north"]["stale"]
    wait_until(
        lambda: rows(a)["north"]["stale"] and rows(a)["south"]["stale"], 30, "b's halls stale"
    )
    took = time.monotonic() - killed
    print(f"b's rows stale in a's overview {took:.1f} s after kill -9 (keep-alive {KEEPALIVE_S} s)")
    assert took <= 3 * KEEPALIVE_S + 3
    got = overview(a)
    r = {x["hall"]: x for x in got["halls"]}
    assert r["north"]["stale_text"].startswith("数据已过时（实例 b 最后更新 ")
    assert not r["east"]["stale"] and not r["west"]["stale"]
    assert got["totals"]["stale"] == 2
    text = asyncio.run(page_text(a, tmp_path / "chromium", SHOT))
    assert "数据已过时（实例 b 最后更新" in text and "数据过时" in text


def written(url: str) -> dict[str, tuple[float, int]]:
    """hall -> (written_at, headcount) in the shared table."""
    with psycopg.connect(url) as con:
        got = con.execute("SELECT hall, written_at, body FROM hallwatch.hall_overview").fetchall()
    return {h: (float(w), int(json.loads(b)["headcount"])) for h, w, b in got}


def test_a_row_is_written_when_it_changes_not_every_tick(
    broker: Mosquitto, daemon_factory: Callable[..., DaemonProcess], pg_url: str, tmp_path: Path
) -> None:
    """A hall in a pending peak is evaluated every tick, but its unchanged row is not written
    again before the keep-alive (60 s here); a change in another hall is written at once."""
    a = shard(daemon_factory, tmp_path, broker, pg_url, "a", ["east", "west"], keepalive_s=60)
    a.start()
    people(broker, {"east": 60, "west": 5}, "1", first=True)
    wait_until(lambda: written(pg_url).get("east", (0, 0))[1] == 60, 20, "east's row")
    wait_until(lambda: written(pg_url).get("west", (0, 0))[1] == 5, 20, "west's row")
    east_at = written(pg_url)["east"][0]
    time.sleep(4)  # two alert ticks at least, east among their halls (its peak is pending)
    people(broker, {"west": 8}, "2")
    wait_until(lambda: written(pg_url)["west"][1] == 8, 20, "west's change")
    assert written(pg_url)["east"][0] == east_at
