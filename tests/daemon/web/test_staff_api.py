"""The staff HTTP API over real stores: tokens and scopes, masking, the procedure's steps,
the CSV export, call-backs, and the complaint and call-back metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hallwatch.alerts.outbox import Outbox
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config.api import ApiSettings
from hallwatch.daemon.config.staff import ComplaintSettings, OutageSettings
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.core.workdays import WorkCalendar
from hallwatch.daemon.staff.complaint_desk import ComplaintDesk
from hallwatch.daemon.staff.complaint_store import ComplaintStore
from hallwatch.daemon.staff.outage import Callbacks, CallbackStore
from hallwatch.daemon.staff.paper import PaperIntake, PaperStore
from hallwatch.daemon.web import staff_api
from hallwatch.daemon.web.server import make_app
from hallwatch.sensors.events import SystemEvent
from prometheus_client import CollectorRegistry

from tests.harness.alert_fakes import serve

T0 = datetime.fromisoformat("2026-11-26T10:00+08:00").timestamp()
TOKENS = ApiSettings.from_mapping(
    {
        "tokens": {
            "desk": {"token": "desk-token-0123456789", "scopes": ["complaints:write"]},
            "head": {
                "token": "head-token-0123456789",
                "scopes": ["complaints:write", "callbacks:write", "pii:read"],
            },
            "viewer": {"token": "view-token-0123456789", "scopes": ["complaints:read"]},
        }
    },
    {},
).tokens


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Api:
    url: str
    http: aiohttp.ClientSession
    state: HallsState
    clock: Clock
    registry: CollectorRegistry

    async def call(
        self, method: str, path: str, token: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()


DESK, HEAD, VIEW = "desk-token-0123456789", "head-token-0123456789", "view-token-0123456789"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    db = tmp_path / "hw.db"
    clock = Clock(T0)
    state = HallsState()
    async with (
        ComplaintStore(db) as cstore,
        CallbackStore(db) as bstore,
        PaperStore(db) as pstore,
        Outbox(db) as outbox,
        aiohttp.ClientSession() as http,
    ):
        desk = ComplaintDesk(
            cstore, ComplaintSettings(), WorkCalendar(), tz="Asia/Shanghai", clock=clock
        )
        cbs = Callbacks(
            bstore,
            outbox,
            OutageSettings(),
            state=lambda: state,
            callback_after=lambda h: 1800,
            clock=clock,
        )
        await desk.start()
        await cbs.start()
        app = make_app(TOKENS, rate_per_minute=0)
        paper = PaperIntake(pstore, state=lambda: state, clock=clock)
        staff_api.add_routes(app, complaints=desk, callbacks=cbs, paper=paper)
        registry = CollectorRegistry()
        registry.register(staff_api.StaffCollector(lambda: desk, lambda: cbs, clock))
        async with serve(app) as url:
            yield Api(url, http, state, clock, registry)


COMPLAINT = {
    "hall": "h1",
    "complaint_id": "C-1",
    "channel": "visit",
    "severity": "normal",
    "summary": "窗口人员态度生硬",
    "received_by": "张三",
    "phone": "13812348000",
}


async def test_every_endpoint_needs_the_right_token(api: Api) -> None:
    """No token or a wrong one is 401; a token without the scope is 403; nothing is changed."""
    for method, path in [
        ("POST", "/api/v1/complaints"),
        ("GET", "/api/v1/complaints"),
        ("GET", "/api/v1/complaints/archive.csv"),
        ("GET", "/api/v1/complaints/h1/C-1"),
        ("POST", "/api/v1/complaints/h1/C-1/transitions"),
        ("POST", "/api/v1/callbacks"),
        ("GET", "/api/v1/callbacks"),
        ("PUT", "/api/v1/outages/h1"),
    ]:
        for token in (None, "wrong-token-0123456789", "Basic " + DESK):
            status, body = await api.call(method, path, token, COMPLAINT)
            assert (status, body["error"]) == (401, "unauthorized"), (method, path, token)
    assert (await api.call("POST", "/api/v1/complaints", VIEW, COMPLAINT))[0] == 403
    assert (await api.call("POST", "/api/v1/callbacks", DESK, {"hall": "h1"}))[0] == 403
    assert (await api.call("GET", "/api/v1/callbacks", DESK))[0] == 403
    status, body = await api.call("GET", "/api/v1/complaints", HEAD)
    assert status == 200 and body["complaints"] == []


async def test_phone_is_masked_unless_the_token_may_read_it(api: Api) -> None:
    """The phone is stored in full but shown as 138****8000 without the pii:read scope."""
    status, body = await api.call("POST", "/api/v1/complaints", DESK, COMPLAINT)
    assert status == 201 and body["created"]
    assert body["complaint"]["phone"] == "138****8000"
    _, shown = await api.call("GET", "/api/v1/complaints/h1/C-1", VIEW)
    assert shown["phone"] == "138****8000"
    _, full = await api.call("GET", "/api/v1/complaints/h1/C-1", HEAD)
    assert full["phone"] == "13812348000"
    _, listing = await api.call("GET", "/api/v1/complaints?hall=h1", DESK)
    assert [c["phone"] for c in listing["complaints"]] == ["138****8000"]
    status, again = await api.call("POST", "/api/v1/complaints", DESK, COMPLAINT)
    assert status == 200 and not again["created"]  # same id: registered once


async def test_the_procedure_through_the_api(api: Api) -> None:
    """Steps in order succeed with who and when; a step out of order is 409; history and CSV."""
    await api.call("POST", "/api/v1/complaints", DESK, COMPLAINT)
    path = "/api/v1/complaints/h1/C-1/transitions"
    status, err = await api.call("POST", path, DESK, {"action": "approve", "by": "王主任"})
    assert (status, err["error"]) == (409, "bad_state")
    status, err = await api.call("POST", path, DESK, {"action": "verify", "by": "李四"})
    assert (status, err["error"]) == (400, "missing_field")  # no proposal
    assert (await api.call("POST", "/api/v1/complaints/h1/nope/transitions", DESK, {}))[0] == 404
    for step in [
        {"action": "verify", "by": "李四", "proposal": "当面致歉"},
        {"action": "approve", "by": "王主任"},
        {"action": "answer", "by": "李四", "note": "电话答复"},
        {"action": "follow_up", "by": "王主任", "note": "当事人满意"},
        {"action": "archive", "by": "李四"},
    ]:
        api.clock.t += 600
        status, body = await api.call("POST", path, DESK, step)
        assert status == 200, body
    _, one = await api.call("GET", "/api/v1/complaints/h1/C-1", VIEW)
    assert one["state"] == "archived"
    assert [(h["action"], h["actor"]) for h in one["history"]] == [
        ("register", "张三"),
        ("notified", "hallwatch"),
        ("verify", "李四"),
        ("approve", "王主任"),
        ("answer", "李四"),
        ("follow_up", "王主任"),
        ("archive", "李四"),
    ]
    status, text = await api.call(
        "GET", "/api/v1/complaints/archive.csv?from=2026-11-26&to=2026-11-26", VIEW
    )
    assert status == 200
    lines = text.lstrip("\ufeff").strip().splitlines()
    assert len(lines) == 1 + 7 and "138****8000" in text and "13812348000" not in text
    _, none = await api.call("GET", "/api/v1/complaints/archive.csv?from=2026-11-27", VIEW)
    assert len(none.strip().splitlines()) == 1  # the header only


async def test_callbacks_only_during_an_outage(api: Api) -> None:
    """Call-backs are refused while systems are up, taken while one is down, and listed masked."""
    body = {"hall": "h1", "name": "王先生", "phone": "13812348000", "by": "前台01"}
    api.state.apply(SystemEvent("h1", "s1", T0, "core", "up"))
    status, err = await api.call("POST", "/api/v1/callbacks", HEAD, body)
    assert (status, err["error"]) == (409, "no_outage")
    api.state.apply(SystemEvent("h1", "s2", T0 + 1, "core", "down"))
    status, made = await api.call("POST", "/api/v1/callbacks", HEAD, body)
    assert status == 201 and made["callback"]["phone"] == "13812348000"  # HEAD has pii:read
    bad = {**body, "phone": "12"}
    assert (await api.call("POST", "/api/v1/callbacks", HEAD, bad))[0] == 400
    status, exp = await api.call(
        "PUT", "/api/v1/outages/h1", HEAD, {"by": "信息中心", "expected_recovery_at": "11:30"}
    )
    assert status == 200 and exp["expected_recovery_at"] == T0 + 5400
    _, outs = await api.call("GET", "/api/v1/outages", HEAD)
    assert outs["outages"]["h1"]["systems"] == ["core"]
    assert outs["outages"]["h1"]["expected_recovery_at"] == T0 + 5400
    sample = api.registry.get_sample_value
    assert sample("hallwatch_callbacks_pending", {"hall": "h1"}) == 1


async def test_complaint_metrics_by_hall(api: Api) -> None:
    """Open, due soon and overdue complaints per hall are exported."""
    await api.call("POST", "/api/v1/complaints", DESK, COMPLAINT)
    await api.call("POST", "/api/v1/complaints", DESK, {**COMPLAINT, "complaint_id": "C-2"})
    sample = api.registry.get_sample_value
    assert sample("hallwatch_complaints_open", {"hall": "h1"}) == 2
    assert sample("hallwatch_complaints_overdue", {"hall": "h1"}) == 0
    api.clock.t = datetime.fromisoformat("2026-11-30T21:00+08:00").timestamp()  # due Mon 24:00
    assert sample("hallwatch_complaints_due_soon", {"hall": "h1"}) == 2
    api.clock.t = datetime.fromisoformat("2026-12-01T00:00+08:00").timestamp()
    assert sample("hallwatch_complaints_overdue", {"hall": "h1"}) == 2


def test_token_settings_are_checked() -> None:
    """Short tokens, unknown scopes and unknown keys stop start-up naming the key."""
    for data, key in [
        ({"tokens": {"a": {"token": "short"}}}, "api.tokens.a.token"),
        (
            {"tokens": {"a": {"token": "x" * 20, "scopes": ["root"]}}},
            "api.tokens.a.scopes",
        ),
        ({"tokens": {"a": {"token": "x" * 20, "scopes": []}}}, "api.tokens.a.scopes"),
        ({"tokns": {}}, "api.tokns"),
    ]:
        with pytest.raises(ConfigError) as err:
            ApiSettings.from_mapping(data, {})
        assert err.value.key == key
    env = {"HALLWATCH_API_TOKENS_A_TOKEN": "from-the-env-0123456"}
    (tok,) = ApiSettings.from_mapping({"tokens": {"a": {"scopes": ["*"]}}}, env).tokens
    assert tok.token == "from-the-env-0123456" and "from-the-env" not in repr(tok)
