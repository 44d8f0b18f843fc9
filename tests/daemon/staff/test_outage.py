"""The outage procedure: status and call-back mode, the call-back register and its SMS on
recovery through the outbox, and the HTTP health probe's `system` events."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hallwatch.alerts.outbox import Outbox
from hallwatch.daemon.config.staff import OutageSettings, Probe
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.staff.outage import (
    Callbacks,
    CallbackStore,
    HealthProbe,
    OutageError,
    _ProbeState,
    outage_status,
    probe_verdict,
)
from hallwatch.sensors.events import SystemEvent
from hallwatch.sensors.parse import parse

from tests.harness.alert_fakes import serve

T0 = 1_795_654_800.0  # 2026-11-26 09:00 Asia/Shanghai


def system(state: HallsState, ts: float, value: str, name: str = "core", hall: str = "h1") -> None:
    state.apply(SystemEvent(hall, f"{name}:{ts}", ts, name, value))  # type: ignore[arg-type]


def test_outage_status_and_callback_mode() -> None:
    """Down: in outage at once, in call-back mode after the escalation time; up: over."""
    s = HallsState()
    system(s, T0, "up")
    assert outage_status(s.halls["h1"], T0 + 1, 1800) is None
    system(s, T0 + 10, "down")
    st = outage_status(s.halls["h1"], T0 + 11, 1800, expected_at=T0 + 3600)
    assert st is not None and st.systems == ("core",) and not st.callback_mode
    assert st.expected_recovery_at == T0 + 3600
    late = outage_status(s.halls["h1"], T0 + 1810, 1800, expected_at=T0 + 1000)
    assert late is not None and late.callback_mode
    assert late.expected_recovery_at is None  # a promised time already past is not shown
    system(s, T0 + 2000, "degraded")
    assert outage_status(s.halls["h1"], T0 + 2001, 1800) is None


def test_probe_needs_consecutive_failures() -> None:
    """One failed check is not an outage; `failures` in a row is; one success is up again."""
    st = _ProbeState()
    assert probe_verdict(True, st, 2) == "up"
    st.state = "up"
    assert probe_verdict(False, st, 2) == "up"
    assert probe_verdict(False, st, 2) == "down"
    assert probe_verdict(True, st, 2) == "up"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def test_callbacks_get_one_sms_each_when_the_system_is_back(tmp_path: Path) -> None:
    """Registered during the outage, each customer's SMS enters the outbox at recovery, once."""
    db = tmp_path / "hw.db"
    state = HallsState()
    clock = Clock(T0)
    settings = OutageSettings()
    async with CallbackStore(db) as store, Outbox(db) as outbox:
        cbs = Callbacks(
            store,
            outbox,
            settings,
            state=lambda: state,
            callback_after=lambda h: 1800,
            clock=clock,
            hall_name=lambda h: "市中心大厅",
        )
        await cbs.start()
        system(state, T0, "up")
        with pytest.raises(OutageError) as err:
            await cbs.register(hall="h1", name="王先生", phone="13812348000", by="前台01")
        assert err.value.code == "no_outage"
        system(state, T0 + 60, "down")
        clock.t = T0 + 1900
        a = await cbs.register(hall="h1", name="王先生", phone="138 1234 8000", by="前台01")
        b = await cbs.register(hall="h1", name="李女士", phone="13912345678", by="前台02")
        with pytest.raises(OutageError):
            await cbs.register(hall="h1", name="x", phone="not a phone", by="前台02")
        assert a.systems == ("core",) and a.phone == "13812348000"
        assert await cbs.tick(clock.t) == 0  # still down
        assert cbs.tally == {"h1": (2, 0)}
        shown = await cbs.public(a, pii=False, tz="Asia/Shanghai")
        assert shown["phone"] == "138****8000" and shown["sms"] == "pending"
        system(state, T0 + 2400, "up")
        clock.t = T0 + 2402
        assert await cbs.tick(clock.t) == 2
        assert await cbs.tick(clock.t + 2) == 0  # nobody twice
        note = await outbox.get(a.key)
        assert note is not None and note.channel == "sms" and note.target == "13812348000"
        assert "王先生" in note.payload["text"] and "市中心大厅" in note.payload["text"]
        assert (await outbox.get(b.key)) is not None
        assert cbs.tally == {"h1": (0, 2)}
        await outbox.mark_sent(note.seq, clock.t + 3)
        got = await store.get(a.id)
        assert got is not None
        assert (await cbs.public(got, pii=True, tz="Asia/Shanghai"))["sms"] == "sent"


async def test_a_crash_between_outbox_and_register_sends_once(tmp_path: Path) -> None:
    """If the SMS was queued but not yet marked, the next run marks it without a second SMS."""
    db = tmp_path / "hw.db"
    state = HallsState()
    system(state, T0, "down")
    clock = Clock(T0 + 10)
    async with CallbackStore(db) as store, Outbox(db) as outbox:
        cbs = Callbacks(
            store,
            outbox,
            OutageSettings(),
            state=lambda: state,
            callback_after=lambda h: 1800,
            clock=clock,
        )
        cb = await cbs.register(hall="h1", name="王先生", phone="13812348000", by="前台01")
        from hallwatch.daemon.staff.outage import callback_sms

        await outbox.enqueue([callback_sms(cb, "h1", OutageSettings().callback_text)], now=T0)
        system(state, T0 + 20, "up")
        assert await cbs.tick(T0 + 30) == 1  # marked now
        assert (await outbox.stats(T0 + 30)).depth == 1  # still the one SMS


async def test_probe_publishes_system_events(tmp_path: Path) -> None:
    """A health URL that starts failing becomes `down` events on the system topic, then `up`."""
    answers = [200, 500, 500, 500, 200, 200]
    app = web.Application()

    async def health(request: web.Request) -> web.Response:
        return web.Response(status=answers.pop(0) if len(answers) > 1 else answers[0])

    app.router.add_get("/health", health)
    published: list[tuple[str, dict[str, Any]]] = []
    async with serve(app) as url, aiohttp.ClientSession() as session:
        probe = Probe("core", f"{url}/health", ("h1", "h2"), interval_s=0.02, failures=2)
        hp = HealthProbe([probe], lambda t, p: published.append((t, p)), session, topic_root="hall")
        task = asyncio.create_task(hp.run())
        for _ in range(200):
            if len([p for _, p in published if p["state"] == "up"]) >= 4:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    states = [(t, p["state"]) for t, p in published]
    assert states == [
        ("hall/h1/system/core", "up"),
        ("hall/h2/system/core", "up"),
        ("hall/h1/system/core", "down"),
        ("hall/h2/system/core", "down"),
        ("hall/h1/system/core", "up"),
        ("hall/h2/system/core", "up"),
    ]
    # Each is a contract event the ingest path accepts as it would a device's.
    topic, body = published[2]
    ev = parse(topic, json.dumps(body).encode(), "hall")
    assert isinstance(ev, SystemEvent) and ev.state == "down" and "HTTP 500" in (ev.detail or "")
