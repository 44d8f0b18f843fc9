"""The HTTP API (ack, Alertmanager webhook) and the service's routing of transitions."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
from hallwatch.alerts.build import channels
from hallwatch.alerts.dispatcher import Dispatcher
from hallwatch.alerts.outbox import Outbox
from hallwatch.alerts.receiver import add_routes
from hallwatch.alerts.service import Alerts
from hallwatch.alerts.view import HallView
from hallwatch.daemon.config.alerts_reader import read_alerts
from hallwatch.daemon.config.api import Token
from hallwatch.daemon.web.server import make_app

from tests.harness.alert_fakes import FakeWecom, serve

TZ = ZoneInfo("Asia/Shanghai")
TOKEN = "alerts-token-0123456789"
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=TZ).timestamp()


def config(wecom_base: str = "http://127.0.0.1:9") -> dict[str, Any]:
    return {
        "wecom": {
            "url": wecom_base + "/cgi-bin/webhook/send",
            "robots": {"hall": {"key": "robot-hall"}, "office": {"key": "robot-office"}},
        },
        "sms": {"provider": "generic", "endpoint": "http://127.0.0.1:9/sms"},
        "webhooks": {"ops": {"url": "http://127.0.0.1:9/hook"}},
        "alertmanager": {"url": "http://127.0.0.1:9"},
        "roles": {
            "supervisor": {
                "wecom": ["hall"],
                "mention_mobiles": ["13800000001"],
                "sms": ["13800000001"],
                "webhooks": ["ops"],
            },
            "director": {"wecom": ["office"], "alerts": ["queue_peak"]},
        },
    }


def crowd(t: float, n: int = 25) -> HallView:
    return HallView(hall="h1", now=T0 + t, headcount=n)


async def test_routing_per_level_and_no_refire_after_restart(tmp_path: Path) -> None:
    """Level 1 reaches the supervisor (markdown, @mobile text, SMS, webhook) and Alertmanager;
    the escalation adds the director's robot; a restarted service does not fire again."""
    settings = read_alerts(config(), {})
    db = tmp_path / "o.db"
    async with Outbox(db) as ob:
        a = Alerts(settings, ob, clock=lambda: T0)
        await a.start()
        await a.evaluate([crowd(0)])
        await a.evaluate([crowd(60)])
        rows = {(n.channel, n.target, n.payload.get("msgtype")) for n in await ob.due(T0 + 60)}
        assert rows == {
            ("wecom", "hall", "markdown"),
            ("wecom", "hall", "text"),
            ("sms", "13800000001", None),
            ("webhook", "ops", None),
            ("alertmanager", "", None),
        }
        (esc,) = await a.evaluate([crowd(100, 45)])
        assert esc.state == "escalated"
        office = [n for n in await ob.due(T0 + 100) if n.target == "office"]
        assert len(office) == 1 and "二级" in office[0].payload["content"]
    async with Outbox(db) as ob:
        b = Alerts(settings, ob, clock=lambda: T0)
        await b.start()
        assert await b.evaluate([crowd(110, 45)]) == []


async def test_ack_api_stops_repeats_and_needs_the_token(tmp_path: Path) -> None:
    """Without the bearer token the ack is refused; with it, no repeat follows 15 min later."""
    settings = read_alerts(config(), {})
    async with Outbox(tmp_path / "o.db") as ob:
        a = Alerts(settings, ob, clock=lambda: T0)
        await a.start()
        (fired,) = [t for s in (0, 60) for t in await a.evaluate([crowd(s)])]
        app = make_app([Token("staff", TOKEN, frozenset({"alerts:write"}))])
        add_routes(app, a, ob)
        async with serve(app) as base, aiohttp.ClientSession() as http:
            url = f"{base}/api/v1/alerts/{fired.alert_id}/ack"
            async with http.post(url, json={"by": "王主任"}) as r:
                assert r.status == 401
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with http.post(url, json={"by": "王主任"}, headers=auth) as r:
                assert r.status == 200 and (await r.json())["acked_by"] == "王主任"
            async with http.post(f"{base}/api/v1/alerts/nope/ack", headers=auth) as r:
                assert r.status == 404
            async with http.get(f"{base}/api/v1/alerts", headers=auth) as r:
                assert (await r.json())["alerts"][0]["acked_by"] == "王主任"
        later = [t for s in range(70, 3000, 30) for t in await a.evaluate([crowd(s)])]
        assert "repeat" not in {t.state for t in later}


async def test_alertmanager_webhook_forwards_to_wecom(tmp_path: Path) -> None:
    """An Alertmanager webhook (version 4) reaches the supervisor's WeCom robot once, even if
    Alertmanager retries the same payload; our own alerts coming back are not forwarded."""
    fake = FakeWecom()
    async with serve(fake.app()) as wecom_base:
        settings = read_alerts(config(wecom_base), {})
        async with Outbox(tmp_path / "o.db") as ob, aiohttp.ClientSession() as http:
            a = Alerts(settings, ob, clock=time.time)
            await a.start()
            app = make_app([Token("am", TOKEN, frozenset({"alerts:forward"}))])
            add_routes(app, a, ob)
            auth = {"Authorization": f"Bearer {TOKEN}"}
            payload = {
                "version": "4",
                "status": "firing",
                "receiver": "hallwatch",
                "groupKey": "{}:{}",
                "truncatedAlerts": 0,
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "NodeDown", "instance": "q1"},
                        "annotations": {"summary": "叫号服务器不可达"},
                        "fingerprint": "abc",
                        "startsAt": "2026-11-26T02:00:00Z",
                        "endsAt": "0001-01-01T00:00:00Z",
                    },
                    {
                        "status": "firing",
                        "labels": {"alertname": "HallQueuePeak", "source": "hallwatch"},
                        "fingerprint": "def",
                        "startsAt": "2026-11-26T02:00:00Z",
                    },
                ],
            }
            async with serve(app) as base:
                for _ in range(2):
                    async with http.post(
                        f"{base}/api/v1/alertmanager/webhook", json=payload, headers=auth
                    ) as r:
                        assert r.status == 200
                async with http.post(
                    f"{base}/api/v1/alertmanager/webhook", json={"x": 1}, headers=auth
                ) as r:
                    assert r.status == 400
            chans = channels(settings, http, clock=time.time)
            task = asyncio.create_task(
                Dispatcher(ob, chans, settings.outbox, clock=time.time, idle_s=0.05).run()
            )
            for _ in range(100):
                await asyncio.sleep(0.05)
                if fake.accepted:
                    break
            await asyncio.sleep(0.2)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    (msg,) = [h.body for h in fake.accepted]
    assert (
        "NodeDown" in msg["markdown"]["content"]
        and "叫号服务器不可达" in msg["markdown"]["content"]
    )


async def test_acknowledgement_outlives_the_episode_for_the_reports(tmp_path: Path) -> None:
    """An ack is kept in `alert_acks` after its alert resolves, and the report reads it."""
    import sqlite3

    from hallwatch.daemon.reports.history import read_acks

    settings = read_alerts(config(), {})
    async with Outbox(tmp_path / "o.db") as ob:
        a = Alerts(settings, ob, clock=lambda: T0)
        await a.start()
        (fired,) = [t for s in (0, 60) for t in await a.evaluate([crowd(s)])]
        assert await a.ack(fired.alert_id, "王主任") is not None
        quiet = [t for s in range(90, 600, 30) for t in await a.evaluate([crowd(s, n=3)])]
        assert "resolved" in {t.state for t in quiet} and not a.active()
    conn = sqlite3.connect(tmp_path / "o.db")
    try:
        (ack,) = read_acks(conn)
    finally:
        conn.close()
    assert ack.acked_by == "王主任" and ack.hall == fired.hall and ack.since == fired.started_at


async def test_a_failed_store_loses_no_transition(tmp_path: Path) -> None:
    """When the outbox cannot store a tick's notifications, the next tick fires them again."""
    settings = read_alerts(config(), {})
    async with Outbox(tmp_path / "o.db") as ob:
        a = Alerts(settings, ob, clock=lambda: T0)
        await a.start()
        assert await a.evaluate([crowd(0)]) == []  # crossing; `for` not over yet
        # The database goes away under the outbox (as on a failing disk): the store fails.
        await ob.__aexit__(None, None, None)
        try:
            await a.evaluate([crowd(60)])
            raise AssertionError("the failed store should have been reported")
        except (RuntimeError, ValueError):
            pass
        await ob.__aenter__()
        fired = [t for t in await a.evaluate([crowd(62)]) if t.state == "firing"]
        assert len(fired) == 1 and fired[0].alert == "queue_peak"
