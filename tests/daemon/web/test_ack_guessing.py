"""Guessing acknowledgement links and codes is bounded (issue 15): a client address whose
lookups failed 10 times within a minute is answered 429 with Retry-After for every lookup on the
phone page (GET and POST /ack/{token}, GET /ack?code=), counted as reason="limited"; other
addresses and valid lookups before the limit are not affected."""

from __future__ import annotations

import asyncio
import http.client
import time
from pathlib import Path

from hallwatch.daemon.web.limits import FailedLookups, RateLimiter

from tests.alerts.test_lunch_gap_live import Clock, door, until, window
from tests.daemon.web.test_ack_live import (
    LINK,
    config,
    form,
    local_path,
    post,
    refusals,
    step,
    t,
    texts,
)
from tests.harness.alert_fakes import FakeWecom, serve
from tests.harness.live_daemon import LiveDaemon
from tests.harness.mosquitto import Mosquitto


def test_failed_lookups_allow_ten_a_minute_then_say_when() -> None:
    """Ten failures pass; then wait() is the whole seconds until one is back (6 at 10 a
    minute), per address; successes take nothing (peek); a refilled token lets one more."""
    clock = [1000.0]
    g = FailedLookups(clock=lambda: clock[0])
    for _ in range(10):
        assert g.wait("10.0.0.1") == 0
        g.failed("10.0.0.1")
    assert g.wait("10.0.0.1") == 6 and g.wait("10.0.0.2") == 0
    assert g.wait("10.0.0.1") == 6  # asking does not take
    clock[0] += 3.0
    assert g.wait("10.0.0.1") == 3
    clock[0] += 3.0
    assert g.wait("10.0.0.1") == 0
    g.failed("10.0.0.1")
    assert g.wait("10.0.0.1") == 6
    bucket = RateLimiter(2)
    assert bucket.peek("a", 0.0) == 0.0 and bucket.peek("a", 0.0) == 0.0
    bucket.take("a", 0.0), bucket.take("a", 0.0)
    assert bucket.peek("a", 0.0) == 30.0


def get_from(d: LiveDaemon, source: str, path: str) -> tuple[int, dict[str, str], str]:
    """GET `path` from the client address `source` (another loopback address)."""
    conn = http.client.HTTPConnection(d.host, d.port, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        conn.close()


def guessing(d: LiveDaemon, good: str) -> None:
    """Ten forged links answer 403; the eleventh lookup, a valid link, a code and a POST all
    answer 429 with Retry-After; 127.0.0.2 still opens the page; after Retry-After seconds
    the valid link opens again from 127.0.0.1."""
    token = good.rsplit("/", 1)[1]
    before = refusals(d)
    assert d.call("GET", good).status == 200  # a valid lookup takes nothing
    for i in range(10):
        forged = token[:-4] + f"{i:04d}"
        assert d.call("GET", f"/ack/{forged}").status == 403
    limited = d.call("GET", f"/ack/{token[:-4]}XXXX")
    assert limited.status == 429 and "尝试次数过多" in limited.body.decode()
    wait = int(limited.headers["Retry-After"])
    assert 1 <= wait <= 6
    assert d.call("GET", good).status == 429  # once limited, even a valid link waits
    assert post(d, good, form(token, person="zhang", windows="1")).status == 429
    code = d.call("GET", "/ack?code=ABCDE-FGHJK")
    assert code.status == 429 and "Retry-After" in code.headers
    assert d.call("GET", "/ack").status == 200  # the bare entry form looks nothing up
    status, _, body = get_from(d, "127.0.0.2", good)
    assert status == 200 and "确认收到，停止重复提醒" in body  # another address
    after = refusals(d)
    assert after["forged"] - before["forged"] == 10
    assert after["limited"] - before.get("limited", 0.0) == 4
    time.sleep(wait + 0.2)
    assert d.call("GET", good).status == 200


async def test_guessing_ack_links_is_limited_per_address(broker: Mosquitto, tmp_path: Path) -> None:
    """The real daemon with a firing alert and its link (from the robot's message): ten failed
    lookups from one address, then 429 with Retry-After for any lookup from it, counted in
    hallwatch_ack_page_refused_total{reason="limited"}; another address is unaffected; the
    address may look up again once Retry-After has passed."""
    wecom, clock, sent = FakeWecom(), Clock(t("09:59")), [0]
    async with serve(wecom.app()) as url:
        d = LiveDaemon(tmp_path / "d", broker.url, config(url), clock=clock)
        await asyncio.to_thread(d.start)
        try:
            opening = [window(w, "open", t("09:59"), ("提取",)) for w in ("w1", "w2", "w3")]
            await step(d, clock, broker, t("09:59"), sent, [*opening, door(t("09:59"), 0, 0)])
            await step(d, clock, broker, t("10:00"), sent, [door(t("10:00"), 25, 0)])
            await step(d, clock, broker, t("10:01"), sent)
            await until(lambda: bool(texts(wecom)), "the firing message at the robot")
            link = LINK.search(texts(wecom)[0])
            assert link
            await asyncio.to_thread(guessing, d, local_path(link[1]))
        finally:
            await asyncio.to_thread(d.stop)
