"""Outgoing rate limits and the Alertmanager receiver's bounds: a flood through the webhook
receiver cannot become a flood of SMS, WeCom messages or webhooks; held messages wait in the
outbox, are counted, and are delivered later, once each."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from hallwatch.alerts.build import channels
from hallwatch.alerts.dispatcher import Dispatcher
from hallwatch.alerts.metrics import AlertMetrics
from hallwatch.alerts.outbox import NewNotification, Outbox
from hallwatch.alerts.receiver import add_routes
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.config.alerts import AlertSettings, ChannelLimits
from hallwatch.daemon.config.alerts_reader import read_alerts
from hallwatch.daemon.config.api import Token
from hallwatch.daemon.web.server import make_app
from prometheus_client import CollectorRegistry

from tests.harness.alert_fakes import FakeWecom, Sink, serve
from tests.harness.fakes import FakeSmsGateway

TOKEN = "am-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PHONES = ["13800000001", "13800000002"]


def webhook_payload(n: int, **annotations: str) -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Flood", "i": str(i)},
                "annotations": {"summary": f"第{i}条", **annotations},
                "fingerprint": f"{i:016x}",
                "startsAt": "2026-11-26T02:00:00Z",
            }
            for i in range(n)
        ],
    }


def settings_for(sms: str, wecom: str) -> AlertSettings:
    return read_alerts(
        {
            "wecom": {"url": wecom + "/cgi-bin/webhook/send", "robots": {"g": {"key": "robot-g"}}},
            "sms": {"provider": "generic", "endpoint": sms + "/sms"},
            "roles": {"supervisor": {"wecom": ["g"], "sms": PHONES}},
        },
        {},
    )


@asynccontextmanager
async def receiver(settings: AlertSettings, ob: Outbox) -> AsyncIterator[str]:
    """The webhook receiver on the daemon's app, with Alertmanager's token."""
    engine = Alerts(settings, ob, clock=time.time)
    await engine.start()
    app = make_app([Token("alertmanager", TOKEN, frozenset({"alerts:forward"}))])
    add_routes(app, engine, ob)
    async with serve(app) as base:
        yield base


async def dispatch_for(seconds: float, ob: Outbox, settings: AlertSettings) -> CollectorRegistry:
    """Run the real dispatcher over the outbox for `seconds`; its metrics' registry."""
    registry = CollectorRegistry()
    metrics = AlertMetrics(registry)
    async with aiohttp.ClientSession() as session:
        chans = channels(settings, session, clock=time.time)
        d = Dispatcher(ob, chans, settings.outbox, clock=time.time, metrics=metrics, idle_s=0.05)
        task = asyncio.create_task(d.run())
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return registry


def rate_limited(registry: CollectorRegistry, channel: str) -> float:
    name = "hallwatch_notifications_rate_limited_total"
    return registry.get_sample_value(name, {"channel": channel}) or 0.0


async def test_600_alerts_in_one_request_are_refused_with_413(tmp_path: Path) -> None:
    """One ~50 KB webhook request with 600 fingerprints (such a request sent 1,200 SMS in 8 s)
    is refused whole with 413 and queues nothing; 100 (the cap) are taken."""
    settings = settings_for("http://127.0.0.1:9", "http://127.0.0.1:9")  # nothing is sent
    async with Outbox(tmp_path / "o.db") as ob, aiohttp.ClientSession() as http:
        async with receiver(settings, ob) as base:
            url = f"{base}/api/v1/alertmanager/webhook"
            lean = {
                "version": "4",
                "status": "firing",
                "alerts": [
                    {"labels": {"alertname": "Flood", "i": str(i)}, "fingerprint": f"{i:016x}"}
                    for i in range(600)
                ],
            }
            body = json.dumps(lean).encode()
            assert 45_000 < len(body) < 64 * 1024  # under the body cap: the alert cap refuses
            hdrs = {**AUTH, "Content-Type": "application/json"}
            async with http.post(url, data=body, headers=hdrs) as r:
                assert r.status == 413 and (await r.json())["error"] == "too_many_alerts"
            assert (await ob.stats(time.time())).depth == 0
            async with http.post(url, json=webhook_payload(100), headers=AUTH) as r:
                assert r.status == 200 and (await r.json())["queued"] == 100 * (1 + len(PHONES))


async def test_sms_flood_is_held_to_the_per_number_limit_and_waits(tmp_path: Path) -> None:
    """100 forwarded alerts to two phones: with the default limits each number gets 20 SMS
    (20 an hour) and the robot 20 (20 a minute); the other 160 SMS and 80 robot messages
    wait in the outbox, counted as rate-limited, none dead."""
    sms, wecom = Sink(), FakeWecom()
    async with (
        serve(sms.app("/sms")) as sms_url,
        serve(wecom.app()) as wecom_url,
        Outbox(tmp_path / "o.db") as ob,
        aiohttp.ClientSession() as http,
    ):
        settings = settings_for(sms_url, wecom_url)
        async with receiver(settings, ob) as base:
            url = f"{base}/api/v1/alertmanager/webhook"
            async with http.post(url, json=webhook_payload(100), headers=AUTH) as r:
                assert r.status == 200
        registry = await dispatch_for(2.0, ob, settings)
        per_phone = {p: sum(1 for _, b, _ in sms.received if b["phone"] == p) for p in PHONES}
        assert per_phone == {p: 20 for p in PHONES}
        assert len(wecom.hits) == 20 and wecom.over_limit == 0
        stats = await ob.stats(time.time())
        assert stats.depth == 300 - 60 and stats.dead == 0
        assert rate_limited(registry, "sms") > 0 and rate_limited(registry, "wecom") > 0


async def test_the_total_limit_spreads_a_burst_and_delivers_each_once(tmp_path: Path) -> None:
    """30 SMS to 30 numbers under a total of 10 per second (scaled): never more than 10 leave
    in any second, and after the burst every number has its SMS exactly once."""
    sms = FakeSmsGateway()
    async with serve(sms.app()) as sms_url, Outbox(tmp_path / "o.db") as ob:
        settings = settings_for(sms_url, "http://127.0.0.1:9")
        limits = {**settings.rate_limits, "sms": ChannelLimits(5, 60.0, 10, 1.0)}
        settings = dataclasses.replace(settings, rate_limits=limits)
        now = time.time()
        notes = [
            NewNotification(f"k/{i}", "sms", f"1390000{i:04d}", {"text": "系统已恢复"})
            for i in range(30)
        ]
        await ob.enqueue(notes, now=now)
        await dispatch_for(4.5, ob, settings)
    phones = sorted(h.body["phone"] for h in sms.hits)
    assert phones == sorted({n.target for n in notes}), "each number once"
    # Times of arrival at the gateway: on a loaded machine one request can sit in transit while
    # the next is quick (0.88 s was seen between the 1st and 11th), so the window allows 0.25 s
    # of jitter; a limiter that did not hold would send the 30 within a few milliseconds.
    sent_at = sorted(h.at for h in sms.hits)
    for i in range(len(sent_at) - 10):
        assert sent_at[i + 10] - sent_at[i] >= 1.0 - 0.25


async def test_relayed_text_is_cleaned_and_bounded(tmp_path: Path) -> None:
    """Annotations with control and right-to-left override characters, WeCom mention and font
    markup and 5,000 characters, and 100 labels, reach the WeCom message cleaned: no such
    characters or markup, the annotation cut to 1,000 characters, at most 32 labels."""
    evil = "\x00\u202e<@all><font color=red>点此</font>" + "长" * 5000
    payload = webhook_payload(1, summary=evil)
    payload["alerts"][0]["labels"].update({f"l{i:03d}": "v" for i in range(100)})
    async with Outbox(tmp_path / "o.db") as ob, aiohttp.ClientSession() as http:
        settings = settings_for("http://127.0.0.1:9", "http://127.0.0.1:9")
        async with receiver(settings, ob) as base:
            url = f"{base}/api/v1/alertmanager/webhook"
            async with http.post(url, json=payload, headers=AUTH) as r:
                assert r.status == 200
        notes = await ob.due(time.time() + 1, 100)
    (md,) = [n.payload["content"] for n in notes if n.channel == "wecom"]
    (sms,) = [n.payload["text"] for n in notes if n.channel == "sms"][:1]
    for text in (md, sms):
        assert "\x00" not in text and "\u202e" not in text
        assert "<@all>" not in text and "<font color=red>" not in text
    assert md.count("长") <= 1000
    assert md.count("=v") <= 32


def test_every_channel_is_built_with_its_limits() -> None:
    """WeCom, SMS, webhooks and Alertmanager each come out of alerts.build held to their own
    [alerts.rate_limits] (per recipient and total); none is sent unlimited."""
    from hallwatch.alerts.channels.limited import RateLimited

    settings = read_alerts(
        {
            "sms": {"provider": "generic", "endpoint": "http://127.0.0.1:9/sms"},
            "alertmanager": {"url": "http://127.0.0.1:9"},
            "rate_limits": {"webhook": {"per_recipient": 7, "total": 9}},
        },
        {},
    )
    chans = channels(settings, None, clock=time.time)  # type: ignore[arg-type]  # not used
    assert set(chans) == {"wecom", "sms", "webhook", "alertmanager"}
    for name, ch in chans.items():
        assert isinstance(ch, RateLimited) and ch.limits == settings.rate_limits[name], name
    assert chans["webhook"].limits.per_recipient == 7  # type: ignore[attr-defined]


async def test_webhook_recipient_limit_holds_the_rest(tmp_path: Path) -> None:
    """Ten notifications to one webhook with a limit of 3 a minute: 3 arrive, 7 wait."""
    sink = Sink()
    async with serve(sink.app()) as base, Outbox(tmp_path / "o.db") as ob:
        settings = read_alerts(
            {
                "webhooks": {"ops": {"url": base + "/hook"}},
                "rate_limits": {"webhook": {"per_recipient": 3}},
            },
            {},
        )
        notes = [NewNotification(f"w/{i}", "webhook", "ops", {"i": i}) for i in range(10)]
        await ob.enqueue(notes, now=time.time())
        registry = await dispatch_for(1.0, ob, settings)
        assert len(sink.received) == 3
        assert (await ob.stats(time.time())).depth == 7
        assert rate_limited(registry, "webhook") > 0
