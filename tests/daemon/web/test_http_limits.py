"""The HTTP API's limits: a per-client rate on mutating requests and the request body cap."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hallwatch.daemon.base.errors import ConfigError
from hallwatch.daemon.config import settings as config
from hallwatch.daemon.config.api import Token
from hallwatch.daemon.core.state import HallsState
from hallwatch.daemon.web.limits import RateLimiter
from hallwatch.daemon.web.server import HttpServer
from prometheus_client import CollectorRegistry


def test_bucket_allows_the_rate_then_says_when() -> None:
    """60 a minute: 60 at once pass, the 61st waits a second, and a second later one passes."""
    lim = RateLimiter(60)
    assert all(lim.take("a", 100.0) == 0 for _ in range(60))
    assert lim.take("a", 100.0) == pytest.approx(1.0)
    assert lim.take("b", 100.0) == 0  # another client has its own bucket
    assert lim.take("a", 101.0) == 0
    assert lim.take("a", 101.0) > 0


def test_client_table_is_bounded() -> None:
    """A flood of distinct addresses keeps at most `max_clients` buckets."""
    lim = RateLimiter(10, max_clients=100)
    for i in range(10_000):
        lim.take(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(lim._buckets) == 100


TOKEN = "limits-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ECHO = "/api/v1/complaints"  # a real POST route, so the auth layer lets the token through


def server(rate: int) -> HttpServer:
    s = HttpServer(
        "127.0.0.1",
        0,
        CollectorRegistry(),
        HallsState,
        lambda: (True, {}),
        time.time,
        90.0,
        rate_per_minute=rate,
        tokens=[Token("all", TOKEN, frozenset({"*"}))],
    )

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"size": len(await request.read())})

    s.app.router.add_post(ECHO, echo)
    return s


async def test_mutating_requests_get_429_with_retry_after() -> None:
    """Past 3 POSTs a minute a client gets 429 and Retry-After 20; GETs are never limited."""
    async with TestClient(TestServer(server(3).app)) as client:
        for _ in range(3):
            assert (await client.post(ECHO, data=b"x", headers=AUTH)).status == 200
        resp = await client.post(ECHO, data=b"x", headers=AUTH)
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "20"
        assert (await resp.json())["error"] == "too many requests"
        for _ in range(10):
            assert (await client.get("/healthz")).status == 200


async def test_report_reads_share_the_limit() -> None:
    """GET /api/report (seconds of CPU each) is limited like a mutation; /metrics is not."""
    s = server(2)

    async def report(request: web.Request) -> web.Response:
        return web.json_response({})

    s.app.router.add_get("/api/report", report)
    async with TestClient(TestServer(s.app)) as client:
        got = [(await client.get("/api/report", headers=AUTH)).status for _ in range(3)]
        assert got == [200, 200, 429]
        assert (await client.get("/metrics")).status == 200


async def test_body_over_64_kib_is_413() -> None:
    """A body just over the 64 KiB cap is refused with 413; one just under is read."""
    async with TestClient(TestServer(server(0).app)) as client:
        assert (await client.post(ECHO, data=b"x" * (64 * 1024), headers=AUTH)).status == 200
        assert (await client.post(ECHO, data=b"x" * (64 * 1024 + 1), headers=AUTH)).status == 413


@pytest.mark.parametrize("value", ["-1", "100001", "many"])
def test_bad_rate_names_the_key(tmp_path: Path, value: str) -> None:
    """A bad http.rate_per_minute stops start-up with a ConfigError naming it."""
    with pytest.raises(ConfigError) as err:
        config.load(None, {"HALLWATCH_HTTP_RATE_PER_MINUTE": value})
    assert err.value.key == "http.rate_per_minute"


def test_rate_defaults_to_120_and_0_turns_it_off() -> None:
    """The default is 120 a minute; 0 is accepted and means no limit."""
    assert config.load(None, {}).http.rate_per_minute == 120
    assert config.load(None, {"HALLWATCH_HTTP_RATE_PER_MINUTE": "0"}).http.rate_per_minute == 0
