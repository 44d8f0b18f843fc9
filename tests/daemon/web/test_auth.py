"""One authentication and authorisation layer for every HTTP route (daemon/web/auth.py): deny by
default, proved on the real daemon's app; tokens and scopes; masking of personal numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hallwatch.alerts.outbox import NewNotification, Outbox
from hallwatch.alerts.receiver import add_routes
from hallwatch.alerts.service import Alerts
from hallwatch.daemon.config import api
from hallwatch.daemon.config.alerts_reader import read_alerts
from hallwatch.daemon.web import auth
from hallwatch.daemon.web.server import make_app

from tests.harness.alert_fakes import serve
from tests.harness.live_daemon import SCOPED, LiveDaemon, token_of
from tests.harness.mosquitto import Mosquitto

PHONE, ID_NO = "13812348000", "110101199003071234"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    """The real daemon with one token per scope, a broker of its own."""
    tmp = tmp_path_factory.mktemp("auth")
    mosq = Mosquitto(tmp / "mosquitto")
    mosq.start()
    d = LiveDaemon(tmp / "daemon", mosq.url).start()
    yield d
    d.stop()
    mosq.stop()


def concrete(pattern: str) -> str:
    """A path that matches `pattern`, e.g. /api/v1/complaints/h1/x for {hall}/{id}."""
    return re.sub(r"\{[^}]+\}", lambda m: "1" if m.group(0) == "{seq}" else "h1", pattern)


# The policy, written out once more on purpose: changing who may call what must change both.
POLICY = {
    ("GET", "/metrics"): None,
    ("GET", "/healthz"): None,
    ("GET", "/screen/{hall}"): None,
    ("GET", "/api/screen/{hall}"): None,
    ("GET", "/api/openapi.json"): None,
    ("GET", "/overview"): None,
    # the acknowledgement page: the signed link in the path is the credential (web.ack_page)
    ("GET", "/ack"): None,
    ("GET", "/ack/{token}"): None,
    ("POST", "/ack/{token}"): None,
    ("GET", "/api/state"): "state:read",
    ("GET", "/api/offpeak/{hall}"): "state:read",
    ("GET", "/api/report"): "reports:read",
    ("GET", "/api/overview"): "overview:read",
    ("GET", "/api/v1/alerts"): "alerts:read",
    ("GET", "/api/v1/alerts/dead-letters"): "alerts:read",
    ("POST", "/api/v1/alerts/{id}/ack"): "alerts:write",
    ("POST", "/api/v1/alerts/dead-letters/{seq}/retry"): "alerts:write",
    ("POST", "/api/v1/alertmanager/webhook"): "alerts:forward",
    ("POST", "/api/v1/complaints"): "complaints:write",
    ("GET", "/api/v1/complaints"): "complaints:read",
    ("GET", "/api/v1/complaints/archive.csv"): "complaints:read",
    ("GET", "/api/v1/complaints/{hall}/{id}"): "complaints:read",
    ("POST", "/api/v1/complaints/{hall}/{id}/transitions"): "complaints:write",
    ("POST", "/api/v1/callbacks"): "callbacks:write",
    ("GET", "/api/v1/callbacks"): "callbacks:read",
    ("GET", "/api/v1/outages"): "callbacks:read",
    ("PUT", "/api/v1/outages/{hall}"): "callbacks:write",
    ("POST", "/api/v1/paper"): "callbacks:write",
    ("GET", "/api/v1/paper"): "callbacks:read",
    ("POST", "/api/v1/paper/{id}/entered"): "callbacks:write",
}


def test_route_table_matches_the_real_app_and_the_policy(live: LiveDaemon) -> None:
    """Every route on the real app is in config.api's tables, every table entry is a route
    (so the table cannot rot), and the tables say what the policy says: only the metrics, the
    health check, the hall screen and the API's description are public."""
    app_routes = {(m, p) for m, p in live.routes() if m != "HEAD"}
    declared = set(api.ROUTES) | set(api.PUBLIC)
    assert app_routes - declared == set(), "routes with no scope and not public"
    assert declared - app_routes == set(), "table entries that are not routes"
    assert set(api.PUBLIC) & set(api.ROUTES) == set()
    assert {k: None for k in api.PUBLIC} | dict(api.ROUTES) == POLICY
    assert set(api.ROUTES.values()) == SCOPED


def test_every_non_public_route_refuses_without_token_or_scope(live: LiveDaemon) -> None:
    """Without a token every non-public route of the real app answers 401, with a token that
    holds none of its scope 403, and with its own scope neither; public routes need nothing."""
    for method, pattern in live.routes():
        path = concrete(pattern)
        body = b"{}" if method in ("POST", "PUT") else None
        if (("GET" if method == "HEAD" else method), pattern) in api.PUBLIC:
            status = live.call(method, path).status
            if pattern == "/ack/{token}":  # its credential is the signed link: a made-up one 403
                assert status == 403, (method, pattern)
            else:
                assert status not in (401, 403), (method, pattern)
            continue
        scope = api.ROUTES[("GET" if method == "HEAD" else method, pattern)]
        none = live.call(method, path, body=body)
        assert none.status == 401, (method, pattern)
        assert none.headers.get("WWW-Authenticate", "").startswith("Bearer")
        for wrong in ("not-a-configured-token-000", token_of("pii:read")):
            assert live.call(method, path, wrong, body).status in (401, 403)
        assert live.call(method, path, token_of("pii:read"), body).status == 403, pattern
        others = [s for s in SCOPED if s != scope and api.IMPLIED.get(s) != scope]
        for other in others:
            status = live.call(method, path, token_of(other), body).status
            assert status == 403, (method, pattern, other, status)
        own = live.call(method, path, token_of(scope), body).status
        assert own not in (401, 403), (method, pattern, own)
        assert live.call(method, path, token_of("*"), body).status not in (401, 403)


async def test_a_route_missing_from_the_table_is_refused_even_to_star() -> None:
    """A route added without a scope answers 401 without a token and 403 to every token, `*`
    included: deny by default."""
    app = make_app([api.Token("all", "star-token-0123456789", frozenset({"*"}))])

    async def new(request: web.Request) -> web.Response:
        return web.json_response({"secret": True})

    app.router.add_get("/api/v1/new", new)
    async with serve(app) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/api/v1/new") as r:
            assert r.status == 401
        auth_hdr = {"Authorization": "Bearer star-token-0123456789"}
        async with http.get(f"{base}/api/v1/new", headers=auth_hdr) as r:
            assert r.status == 403 and "secret" not in await r.text()


def test_keyring_matches_exactly_and_any_bearer_case() -> None:
    """Only the exact token matches (not a prefix, not an extension); the scheme is
    case-insensitive; other schemes and empty values match nothing."""
    tok = api.Token("a", "alpha-token-0123456789", frozenset({"alerts:read"}))
    ring = auth.Keyring([tok, api.Token("b", "beta-token-0123456789", frozenset())])
    assert ring.find("Bearer alpha-token-0123456789") is tok
    assert ring.find("bearer  alpha-token-0123456789 ") is tok
    for header in (
        "Bearer alpha-token-012345678",
        "Bearer alpha-token-01234567890",
        "Basic alpha-token-0123456789",
        "Bearer ",
        "",
        "alpha-token-0123456789",
    ):
        assert ring.find(header) is None, header


def test_scopes_imply_reads_and_star_is_everything() -> None:
    """A write scope includes its read; `*` holds every scope, pii:read included."""
    w = api.Token("w", "x" * 16, frozenset({"complaints:write"}))
    assert w.allows("complaints:read") and not w.allows("callbacks:read")
    star = api.Token("s", "y" * 16, frozenset({"*"}))
    assert all(star.allows(s) for s in api.SCOPES)


def test_state_and_offpeak_need_state_read(live: LiveDaemon) -> None:
    """/api/state and /api/offpeak/{hall}, open to anyone before, need state:read; the hall
    screen and its JSON stay public."""
    assert live.call("GET", "/api/state").status == 401
    assert live.call("GET", "/api/state", token_of("state:read")).status == 200
    assert live.call("GET", "/api/offpeak/h1").status == 401
    assert live.call("GET", "/screen/h1").status == 200
    assert live.call("GET", "/api/screen/h1").status in (200, 404)  # 404: hall not seen yet


async def test_dead_letters_mask_phone_numbers_without_pii_read(tmp_path: Path) -> None:
    """GET /api/v1/alerts/dead-letters shows an SMS recipient as 138****8000 (also inside the
    error text) to alerts:read, and in full only to a token that also holds pii:read."""
    settings = read_alerts({}, {})
    async with Outbox(tmp_path / "o.db") as ob:
        await ob.enqueue([NewNotification("k/1", "sms", PHONE, {"text": "x"})], now=100.0)
        (row,) = await ob.due(100.0)
        await ob.mark_dead(row.seq, 101.0, f"gateway refused {PHONE}")
        engine = Alerts(settings, ob, clock=lambda: 200.0)
        await engine.start()
        app = make_app(
            [
                api.Token("reader", "reader-token-0123456789", frozenset({"alerts:read"})),
                api.Token("pii", "pii-token-01234567890", frozenset({"alerts:read", "pii:read"})),
            ]
        )
        add_routes(app, engine, ob)
        async with serve(app) as base, aiohttp.ClientSession() as http:
            url = f"{base}/api/v1/alerts/dead-letters"
            hdr = {"Authorization": "Bearer reader-token-0123456789"}
            async with http.get(url, headers=hdr) as r:
                text = await r.text()
                (dl,) = (await r.json())["dead_letters"]
            assert PHONE not in text
            assert dl["target"] == "138****8000" and "138****8000" in dl["last_error"]
            hdr = {"Authorization": "Bearer pii-token-01234567890"}
            async with http.get(url, headers=hdr) as r:
                (dl,) = (await r.json())["dead_letters"]
            assert dl["target"] == PHONE


def test_mask_text_hides_phones_and_ids_but_not_other_numbers() -> None:
    """Mobile (also +86 and grouped), landline and 18/15-digit ID numbers are masked; epoch
    times, decimals and counts in the same text are not."""
    from hallwatch.daemon.base.pii import mask_text

    text = (
        f"客户{PHONE}，+86 138 1234 8001，座机010-62345678，身份证{ID_NO}、"
        "旧证110101900307123；ts=1795658400 1795658400123 0.13912340000 共12人"
    )
    out = mask_text(text)
    for secret in (PHONE, "138 1234 8001", "62345678", ID_NO, "110101900307123"):
        assert secret not in out, secret
    assert "138****8000" in out and "110***********1234" in out
    for kept in ("1795658400", "1795658400123", "0.13912340000", "共12人"):
        assert kept in out, kept


async def test_report_masks_complaint_numbers_without_pii_read(tmp_path: Path) -> None:
    """GET /api/report quoted a complaint with the customer's phone and ID numbers to anyone;
    now it needs reports:read, and without pii:read the page and every file of the zip show
    them masked; with pii:read they are shown."""
    import io
    import json
    import zipfile
    from datetime import datetime

    from hallwatch.daemon.config.settings import Settings
    from hallwatch.daemon.store.events import NewEvent, Store
    from hallwatch.daemon.web import report_api

    ts = datetime.fromisoformat("2026-11-26T10:00+08:00").timestamp()
    summary = f"客户{PHONE}反映等候太久，身份证{ID_NO}"
    payload = {
        "id": "c-1",
        "ts": int(ts * 1000),
        "complaint_id": "C-1",
        "channel": "visit",
        "severity": "normal",
        "summary": summary,
        "received_by": "张三",
    }
    db = tmp_path / "hw.db"
    async with Store(db) as store:
        ev = NewEvent("h1", "c-1", "hall/h1/complaint", ts, ts, json.dumps(payload).encode())
        await store.commit_batch([ev])
    app = make_app(
        [
            api.Token("centre", "centre-token-0123456789", frozenset({"reports:read"})),
            api.Token("head", "head-token-01234567890", frozenset({"reports:read", "pii:read"})),
        ]
    )
    report_api.add_routes(app, db, Settings())
    url = "/api/report?from=2026-11-26&to=2026-11-26"
    async with serve(app) as base, aiohttp.ClientSession() as http:
        async with http.get(base + url) as r:
            assert r.status == 401
        centre = {"Authorization": "Bearer centre-token-0123456789"}
        async with http.get(base + url, headers=centre) as r:
            page = await r.text()
        assert "反映等候太久" in page and "138****8000" in page
        assert PHONE not in page and ID_NO not in page
        async with http.get(base + url + "&format=zip", headers=centre) as r:
            with zipfile.ZipFile(io.BytesIO(await r.read())) as z:
                texts = [z.read(n).decode("utf-8-sig") for n in z.namelist()]
        assert any("反映等候太久" in t for t in texts)
        assert not any(PHONE in t or ID_NO in t for t in texts)
        head = {"Authorization": "Bearer head-token-01234567890"}
        async with http.get(base + url, headers=head) as r:
            assert summary in await r.text()
